"""Restart to ready and memory per open deal, per table store, at 10,000 and 100,000 open deals, and
at 1,000,000 with RocksDB (the issue's line: a rebuild that counts every deal grows with them).

For each size a fresh broker holds exactly that many open deals (``bench.dataset.open_deals``).
Per store a worker folds them (until its group committed all input), stops gracefully and starts
again: printed are the seconds from the restart's launch to ``/health/ready``, the worker's
resident memory once ready (memory per deal is the difference between the two sizes over the
90,000 deals between them), the seconds of the rebuild itself (the worker's log: aggregates and alert
schedule from every deal), and the deal record's size. After the restart the deal table must
hold exactly the deals produced. With py-spy, one more restart of the largest RocksDB worker is
sampled: where its rebuild spends its time. The memory store recovers every changelog record (Tansu never
compacts: every version of every deal); RocksDB reads only what its disk lacks. Both rebuild the
aggregates from every deal before they report ready.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench import profile
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
    rebuild_seconds: float  # the worker's rebuild of aggregates and alert schedule, from its log

    @property
    def rebuild_us_per_deal(self) -> float:
        return self.rebuild_seconds / self.deals * 1e6


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


REBUILT = re.compile(r"rebuilt for partitions .* from (\d+) deals in ([\d.]+)s")
REBUILD_FRAME = "Engine._rebuild"


def rebuild_seconds(log: Path) -> float:
    """The rebuild's seconds, as the worker logged them (the last rebuild, of every partition it owns)."""
    found = REBUILT.findall(log.read_text())
    if not found:
        raise SystemExit(f"restart: no rebuild in the worker's log {log}")
    return float(found[-1][1])


def run_store(
    store: str, deals: int, bootstrap: str, scratch: Path, total: int, py_spy: str | None = None
) -> tuple[Restart, profile.Profile | None]:
    app_id = f"restart-{store}"
    env = leadpulse_env(bootstrap, app_id, scratch / app_id, LEADPULSE_STORE=store, LEADPULSE_LOG_LEVEL="INFO")
    port, command, keys = env["LEADPULSE_WEB_PORT"], [sys.executable, "-m", "streams.cli", "worker"], f'table="{DEALS}"'
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        committed = lambda: asyncio.run(committed_total(bootstrap, app_id, DEAL_TOPICS)) >= total  # noqa: E731
        wait(committed, f"{store}: the fold", worker)
    finally:
        stop(worker)
    log = scratch / f"{app_id}-{deals}.log"
    started = time.perf_counter()
    with log.open("w") as output:
        worker = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait(lambda: ready(port), f"{store}: ready after the restart", worker)
        seconds = time.perf_counter() - started
        held = metric(port, "leadpulse_table_keys", keys)
        if held != deals:
            raise SystemExit(f"restart: {store} holds {held:,.0f} deals after the restart, not {deals:,}")
        record = metric(port, "leadpulse_table_bytes", keys) / held
        rss = resident_bytes(worker.pid)
    finally:
        stop(worker)
    result = Restart(store, deals, seconds, rss, record, rebuild_seconds(log))
    return result, None if py_spy is None else sampled_restart(py_spy, command, env, scratch / f"{app_id}.raw")


def sampled_restart(py_spy: str, command: list[str], env: dict[str, str], output: Path) -> profile.Profile:
    """One more restart, py-spy attached from its launch until it is ready: the rebuild's samples."""
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sampler = profile.Sampler(py_spy, worker.pid, output, rate=200)
    try:
        wait(lambda: ready(env["LEADPULSE_WEB_PORT"]), "ready under py-spy", worker)
        sampler.stop()
    finally:
        sampler.kill()
        stop(worker)
    return profile.summarize(output.read_text(), within=REBUILD_FRAME)


def stop(worker: subprocess.Popen) -> None:
    worker.terminate()
    worker.wait(120)


SIZES = (10_000, 100_000)  # per store; memory per open deal is the difference between the two
LARGEST = 1_000_000  # RocksDB only: the memory store would replay every changelog version for minutes


def measure(
    sizes: tuple[int, ...] = SIZES, largest: int | None = LARGEST, py_spy: str | None = None
) -> tuple[list[Restart], profile.Profile | None]:
    """The restarts (every store at ``sizes``, RocksDB at ``largest``), and with ``py_spy`` the
    profile of the largest RocksDB worker's rebuild."""
    runs = [(deals, STORES) for deals in sizes] + ([(largest, ("rocksdb",))] if largest else [])
    sampled_size = max(deals for deals, _stores in runs)
    results, sampled = [], None
    for deals, stores in runs:
        messages = open_deals(deals)
        with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(log_path=Path(tmp) / "tansu.log") as broker:
            prepare(broker.bootstrap, *(f"restart-{store}" for store in stores))
            asyncio.run(produce(broker.bootstrap, messages))
            total = len(messages)
            del messages  # a million deals' messages: about a gigabyte, not needed while the workers run
            for store in stores:
                sample = py_spy if store == "rocksdb" and deals == sampled_size else None
                result, found = run_store(store, deals, broker.bootstrap, Path(tmp), total, sample)
                results.append(result)
                sampled = found or sampled
    return results, sampled


def per_open_deal(results: list[Restart], store: str) -> float:
    """Resident bytes per open deal: the difference between the store's two ``SIZES``."""
    small, large = (next(r for r in results if r.store == store and r.deals == deals) for deals in SIZES)
    return (large.rss_bytes - small.rss_bytes) / (large.deals - small.deals)


if __name__ == "__main__":
    for result in measure()[0]:
        print(result)
