"""Same-run benchmark: LeadPulse vs a naive Faust agent, on the simulator's mix, through Tansu.

    python3 dev.py bench [--seconds 3600] [--rate 20]

Produces a seeded simulated history into a fresh embedded broker, then runs each consumer as
its own process, one after the other, and measures events per second from its first processed
event to its last. Prints both figures and their ratio, and LeadPulse's bytes per deal record.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaProducer

from streams.broker import EmbeddedBroker, free_port
from streams.config import load_settings
from streams.engine import changelog_topics
from streams.simulate import CrmSimulation
from streams.tables import DEALS
from streams.topics import ensure_topics

# A full /metrics scrape renders thousands of series on the worker's event loop: poll about as
# rarely as Prometheus would, or the benchmark measures its own polling.
POLL_SECONDS = 1.0


def simulated(seconds: float, rate: float) -> list:
    now = time.time()
    simulation = CrmSimulation(load_settings(), seed=42, rate=rate)
    return [*simulation.profiles(now - seconds - 60), *simulation.backfill(now - seconds, now)]


async def produce(bootstrap: str, messages: list) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20, acks=1)
    await producer.start()
    started = time.perf_counter()
    for message in messages:
        await producer.send(message.topic, message.value, key=message.key)
    await producer.flush()
    await producer.stop()
    return time.perf_counter() - started


def measure(name: str, command: list[str], env: dict[str, str], progress: Callable[[], int], total: int) -> float:
    """Events/s between the first and the last processed event of a consumer process."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        first_at = first_count = None
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"{name} exited with {process.returncode}")
            try:
                count = progress()
            except OSError:
                count = 0
            now = time.perf_counter()
            if count and first_at is None:
                first_at, first_count = now, count
            if count >= total:
                assert first_at is not None and first_count is not None
                elapsed = now - first_at
                return (count - first_count) / elapsed if elapsed > 0 else float("inf")
            time.sleep(POLL_SECONDS)
        raise SystemExit(f"{name} did not finish")
    finally:
        process.terminate()
        process.wait(30)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read()


def leadpulse_metric(port: int, name: str, exclude: str = "\0", include: str = "") -> float:
    total = 0.0
    for line in fetch(f"http://127.0.0.1:{port}/metrics").decode().splitlines():
        if line.startswith(name) and exclude not in line and include in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def workload(description: str | None) -> tuple[list, int]:
    """The simulated history the command line asks for, and how many of its messages are deal events."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=7200, help="simulated history to replay")
    parser.add_argument("--rate", type=float, default=20, help="simulated events per second")
    args = parser.parse_args()
    messages = simulated(args.seconds, args.rate)
    return messages, sum(1 for m in messages if m.topic != "crm.reps")


def main() -> None:
    messages, deal_messages = workload(__doc__)
    with tempfile.TemporaryDirectory() as scratch, EmbeddedBroker(log_path=Path(scratch) / "tansu.log") as broker:
        settings = load_settings(broker=broker.bootstrap, app_id="bench-leadpulse")
        deal_changelogs, global_changelogs = changelog_topics(settings)
        asyncio.run(
            ensure_topics(
                settings, broker.bootstrap, deal_changelogs=deal_changelogs, global_changelogs=global_changelogs
            )
        )
        produce_seconds = asyncio.run(produce(broker.bootstrap, messages))
        print(f"produced {len(messages)} messages ({deal_messages} deal events) in {produce_seconds:.1f}s")

        naive_port = free_port()
        naive = measure(
            "naive Faust",
            [sys.executable, "-m", "bench.naive_faust", broker.bootstrap, str(naive_port)],
            dict(os.environ),
            lambda: json.loads(fetch(f"http://127.0.0.1:{naive_port}/count"))["count"],
            deal_messages,
        )
        port = free_port()
        env = {
            **os.environ,
            "LEADPULSE_BROKER": broker.bootstrap,
            "LEADPULSE_APP_ID": "bench-leadpulse",
            "LEADPULSE_WEB_PORT": str(port),
            "LEADPULSE_DATA_DIR": str(Path(scratch) / "leadpulse"),
            "LEADPULSE_SESSION_TIMEOUT_SECONDS": "6",
            "LEADPULSE_LOG_LEVEL": "WARNING",
        }
        sizes: dict[str, float] = {}

        def leadpulse_progress() -> int:
            count = int(leadpulse_metric(port, "leadpulse_events_processed_total", exclude='topic="crm.reps"'))
            if count >= deal_messages:
                deals = f'table="{DEALS}"'
                sizes["keys"] = leadpulse_metric(port, "leadpulse_table_keys", include=deals)
                sizes["bytes"] = leadpulse_metric(port, "leadpulse_table_bytes", include=deals)
            return count

        leadpulse = measure(
            "LeadPulse", [sys.executable, "-m", "streams.cli", "worker"], env, leadpulse_progress, deal_messages
        )
    print(f"naive Faust agent (one table write per event): {naive:10,.0f} events/s")
    print(f"LeadPulse worker (the whole catalog):         {leadpulse:10,.0f} events/s   ({leadpulse / naive:.2f}x)")
    if sizes.get("keys"):
        print(f"LeadPulse deal records: {sizes['keys']:,.0f}, {sizes['bytes'] / sizes['keys']:,.0f} bytes per deal")


if __name__ == "__main__":
    main()
