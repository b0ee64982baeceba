"""Restart to ready, per table store, in the same run on the same broker and dataset.

    .venv/bin/python -m bench.restart [--seconds 7200] [--rate 20]

For each store a worker (its own app id and data directory) folds the simulator's history, stops
gracefully, and starts again: printed are its events/s on the first run and the seconds from the
restart's launch to ``/health/ready``. The memory store recovers every changelog record (Tansu
never compacts, so every version of every deal); RocksDB reads only what its disk lacks.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
from pathlib import Path

from bench.run import fetch, leadpulse_metric, produce, workload
from streams.broker import EmbeddedBroker, free_port
from streams.tables import DEALS


def ready(port: int) -> bool:
    try:
        fetch(f"http://127.0.0.1:{port}/health/ready")
        return True
    except (OSError, urllib.error.HTTPError):
        return False


def wait(condition, what: str, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def run_store(store: str, bootstrap: str, scratch: Path, deal_messages: int) -> tuple[float, float, float]:
    """(events/s on the first run, deal records, seconds from restart to ready)."""
    port = free_port()
    env = {
        **os.environ,
        "LEADPULSE_BROKER": bootstrap,
        "LEADPULSE_APP_ID": f"restart-{store}",
        "LEADPULSE_STORE": store,
        "LEADPULSE_WEB_PORT": str(port),
        "LEADPULSE_DATA_DIR": str(scratch / store),
        "LEADPULSE_SESSION_TIMEOUT_SECONDS": "6",
        "LEADPULSE_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "streams.cli", "worker"]

    def processed() -> int:
        try:
            return int(leadpulse_metric(port, "leadpulse_events_processed_total", exclude='topic="crm.reps"'))
        except OSError:
            return 0

    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: processed() > 0, f"{store}: first events")
        first_at, first = time.perf_counter(), processed()
        wait(lambda: processed() >= deal_messages, f"{store}: all events")
        rate = (deal_messages - first) / (time.perf_counter() - first_at)
        deals = leadpulse_metric(port, "leadpulse_table_keys", include=f'table="{DEALS}"')
    finally:
        worker.terminate()
        worker.wait(60)
    started = time.perf_counter()
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: ready(port), f"{store}: ready after the restart")
        restart = time.perf_counter() - started
        wait(lambda: processed() >= deal_messages, f"{store}: the same figures after the restart", timeout=120)
    finally:
        worker.terminate()
        worker.wait(60)
    return rate, deals, restart


def main() -> None:
    messages, deal_messages = workload(__doc__)
    with tempfile.TemporaryDirectory() as scratch, EmbeddedBroker(log_path=Path(scratch) / "tansu.log") as broker:
        asyncio.run(produce(broker.bootstrap, messages))
        print(f"{len(messages):,} messages ({deal_messages:,} deal events)")
        print(f"{'store':8} {'events/s':>10} {'deals':>8} {'restart to ready':>17}")
        for store in ("memory", "rocksdb"):
            rate, deals, restart = run_store(store, broker.bootstrap, Path(scratch), deal_messages)
            print(f"{store:8} {rate:10,.0f} {deals:8,.0f} {restart:15.1f} s", flush=True)


if __name__ == "__main__":
    main()
