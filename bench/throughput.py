"""Events per second until a consumer group has committed all input, every consumer timed alike.

Each consumer runs as its own process(es) on a fresh consumer group over the same input. The
clock starts at the group's first commit and stops when its committed offsets cover the input:
(offsets committed in between) / (seconds in between), polled twice a second from outside the
group (``streams.kafka.topics.committed_total``). Start-up and the group join are not counted; every
consumer commits about every second, so the figure is good to a second or so of the run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.consumers import COMMIT_SECONDS, DEAL_TOPICS
from streams.kafka.broker import free_port
from streams.kafka.topics import committed_total

POLL_SECONDS = 0.5


Process = tuple[Sequence[str], dict[str, str]]  # command, environment


def committed_rate(name: str, launches: Sequence[Process], bootstrap: str, group: str, total: int) -> float:
    """Start the processes, return events/s from the group's first commit to its last."""
    processes = [
        subprocess.Popen(list(command), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for command, env in launches
    ]
    try:
        first: tuple[float, int] | None = None
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            if any(process.poll() is not None for process in processes):
                raise SystemExit(f"{name}: a process exited early ({[p.returncode for p in processes]})")
            committed = asyncio.run(committed_total(bootstrap, group, DEAL_TOPICS))
            now = time.perf_counter()
            if committed and first is None:
                first = (now, committed)
            if committed >= total and first is not None:
                elapsed = now - first[0]
                return (committed - first[1]) / elapsed if elapsed > 0 else float("nan")
            time.sleep(POLL_SECONDS)
        raise SystemExit(f"{name}: did not commit all {total:,} input messages in 30 minutes")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()


def baseline(name: str, module: str, python: str, bootstrap: str, scratch: Path, total: int) -> float:
    group = f"bench-{module}"
    command = [python, "-m", f"bench.consumers.{module}", bootstrap, group, str(scratch / group)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    return committed_rate(name, [(command, env)], bootstrap, group, total)


def leadpulse_env(bootstrap: str, app_id: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """A worker of the benchmark: the default (RocksDB) store, commit windows like the baselines'."""
    return {
        **os.environ,
        "LEADPULSE_BROKER": bootstrap,
        "LEADPULSE_APP_ID": app_id,
        "LEADPULSE_DATA_DIR": str(data_dir),
        "LEADPULSE_WEB_PORT": str(free_port()),
        "LEADPULSE_COMMIT_INTERVAL_SECONDS": str(COMMIT_SECONDS),
        "LEADPULSE_SESSION_TIMEOUT_SECONDS": "6",
        "LEADPULSE_LOG_LEVEL": "WARNING",
        **extra,
    }


def ready(port: str) -> bool:
    """The worker at ``port`` answers ``/health/ready`` with 200 (an error raises OSError)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2) as response:
        return response.status == 200


def wait(condition: Callable[[], object], what: str, process: subprocess.Popen, timeout: float = 1800) -> None:
    """Until ``condition`` holds (an OSError counts as not yet); fails if the worker exits first."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the worker exited ({what})")
        try:
            if condition():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def leadpulse(workers: int, bootstrap: str, scratch: Path, total: int, app_id: str) -> float:
    """``workers`` LeadPulse workers in one group (the catalog, outputs, changelogs: all of it),
    each with its own port and data directory."""
    command = [sys.executable, "-m", "streams.cli", "worker"]
    launches = [(command, leadpulse_env(bootstrap, app_id, scratch / f"{app_id}-{n}")) for n in range(workers)]
    return committed_rate(f"LeadPulse x{workers}", launches, bootstrap, app_id, total)
