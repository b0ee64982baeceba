"""Restart to ready and memory per open deal, per table store, at 10,000 and 100,000 open deals.

For each size a fresh broker holds exactly that many open deals (``bench.dataset.open_deals``).
Per store a worker folds them (until its group committed all input), stops gracefully and starts
again: printed are the seconds from the restart's launch to ``/health/ready``, the worker's
resident memory once ready (memory per deal is the difference between the two sizes over the
90,000 deals between them), and the deal record's size. After the restart the deal table must
hold exactly the deals produced. The memory store recovers every changelog record (Tansu never
compacts: every version of every deal); RocksDB reads only what its disk lacks. Both rebuild the
aggregates from every deal before they report ready.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.consumers import DEAL_TOPICS
from bench.dataset import open_deals, prepare, produce
from bench.throughput import leadpulse_env, ready, wait
from streams.kafka.broker import EmbeddedBroker
from streams.kafka.topics import committed_total
from streams.state.tables import DEALS

STORES = ("memory", "rocksdb")


@dataclass
class Restart:
    store: str
    deals: int
    restart_seconds: float
    rss_bytes: int
    record_bytes: float


def metric(port: str, name: str, labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(f"{name}{{{labels}}}"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run_store(store: str, deals: int, bootstrap: str, scratch: Path, total: int) -> Restart:
    app_id = f"restart-{store}"
    env = leadpulse_env(bootstrap, app_id, scratch / app_id, LEADPULSE_STORE=store)
    port, command, keys = env["LEADPULSE_WEB_PORT"], [sys.executable, "-m", "streams.cli", "worker"], f'table="{DEALS}"'
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        committed = lambda: asyncio.run(committed_total(bootstrap, app_id, DEAL_TOPICS)) >= total  # noqa: E731
        wait(committed, f"{store}: the fold", worker)
    finally:
        worker.terminate()
        worker.wait(120)
    started = time.perf_counter()
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: ready(port), f"{store}: ready after the restart", worker)
        seconds = time.perf_counter() - started
        held = metric(port, "leadpulse_table_keys", keys)
        if held != deals:
            raise SystemExit(f"restart: {store} holds {held:,.0f} deals after the restart, not {deals:,}")
        record = metric(port, "leadpulse_table_bytes", keys) / held
        return Restart(store, deals, seconds, resident_bytes(worker.pid), record)
    finally:
        worker.terminate()
        worker.wait(120)


def measure(sizes: tuple[int, ...] = (10_000, 100_000)) -> list[Restart]:
    results = []
    for deals in sizes:
        messages = open_deals(deals)
        with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(log_path=Path(tmp) / "tansu.log") as broker:
            prepare(broker.bootstrap, *(f"restart-{store}" for store in STORES))
            asyncio.run(produce(broker.bootstrap, messages))
            for store in STORES:
                results.append(run_store(store, deals, broker.bootstrap, Path(tmp), len(messages)))
    return results


if __name__ == "__main__":
    for result in measure():
        print(result)
