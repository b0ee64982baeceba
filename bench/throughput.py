"""How long each consumer takes over the same input, from its launch, every consumer timed alike.

Each consumer runs as its own process(es) on a fresh consumer group over the same input. The
clock starts when its processes are launched and stops when the group's committed offsets cover
the input, polled from outside the group every ``POLL_SECONDS`` (one admin client, connected
before the launch). Its start-up is the time from the launch to the first commit seen: the only
sign of progress the harness can observe without touching the consumer (every consumer commits
about every second, so that includes up to a second of work). So each consumer gets

- events/s over the whole run: input / (launch -> all committed), start-up included;
- events/s after start-up: (input - what the first commit covered) / (first commit -> all committed),
  the former clock, which flatters a group that holds its commits while it rebalances;
- CPU microseconds per event: user + system time of its processes (``/proc/<pid>/stat``, with any
  children) over the run and after start-up, which other load on the machine moves much less than
  the wall clock.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.consumers import COMMIT_SECONDS, DEAL_TOPICS
from streams.kafka.broker import free_port

POLL_SECONDS = 0.2
TIMEOUT_SECONDS = 3600
TICKS = os.sysconf("SC_CLK_TCK")

Process = tuple[Sequence[str], dict[str, str]]  # command, environment


@dataclass(frozen=True)
class Timing:
    """One consumer over the input; seconds from its launch."""

    events: int  # the input: messages on the deal topics
    start_up: float  # launch -> the group's first commit seen
    first_committed: int  # what that commit covered
    done: float  # launch -> committed offsets cover the input
    cpu: float  # CPU seconds of its processes, launch -> done
    cpu_start_up: float  # CPU seconds, launch -> first commit seen

    @property
    def rate(self) -> float:
        return self.events / self.done

    @property
    def rate_after_start_up(self) -> float:
        span = self.done - self.start_up
        return (self.events - self.first_committed) / span if span > 0 else float("nan")

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu / self.events * 1e6

    @property
    def cpu_us_after_start_up(self) -> float:
        events = self.events - self.first_committed
        return (self.cpu - self.cpu_start_up) / events * 1e6 if events > 0 else float("nan")


class CpuMeter:
    """User + system CPU seconds of some processes and their descendants, as last seen alive."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.roots = list(pids)
        self.seen: dict[int, float] = {}

    @staticmethod
    def _children(pid: int) -> list[int]:
        children = []
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as listing:
                    children += [int(child) for child in listing.read().split()]
        except OSError:
            pass
        return children

    def read(self) -> float:
        pending = list(self.roots)
        while pending:
            pid = pending.pop()
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:  # gone: its last reading stands
                continue
            self.seen[pid] = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
            pending += self._children(pid)
        return sum(self.seen.values())


async def _partitions(admin: AIOKafkaAdminClient) -> list[TopicPartition]:
    """The deal topics' partitions, found in the full metadata (naming topics could make Tansu create them)."""
    return [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in await admin.describe_topics()
        if topic["topic"] in DEAL_TOPICS and not topic["error_code"]
        for partition in topic["partitions"]
    ]


async def _committed(admin: AIOKafkaAdminClient, group: str, partitions: list[TopicPartition]) -> int:
    """The group's committed offsets summed (Tansu cannot answer OffsetFetch for "all partitions":
    ``streams.kafka.topics.committed_offsets``)."""
    offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
    return sum(metadata.offset for metadata in offsets.values() if metadata.offset >= 0)


# Called once the group first commits, with the launched processes; returns what to call once all
# input is committed, before they are stopped (the profile attaches py-spy this way).
AtFirstCommit = Callable[[Sequence[subprocess.Popen]], Callable[[], None]]


async def _timed(
    name: str,
    launches: Sequence[Process],
    bootstrap: str,
    group: str,
    total: int,
    at_first_commit: AtFirstCommit | None = None,
) -> Timing:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    processes: list[subprocess.Popen] = []
    try:
        partitions = await _partitions(admin)
        launched = time.perf_counter()
        processes = [
            subprocess.Popen(list(command), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for command, env in launches
        ]
        cpu = CpuMeter([process.pid for process in processes])
        first: tuple[float, int, float] | None = None  # seconds, committed, CPU seconds
        finish: Callable[[], None] | None = None
        while time.perf_counter() - launched < TIMEOUT_SECONDS:
            if any(process.poll() is not None for process in processes):
                raise SystemExit(f"{name}: a process exited early ({[p.returncode for p in processes]})")
            committed = await _committed(admin, group, partitions)
            now, used = time.perf_counter() - launched, cpu.read()
            if committed and first is None:
                first = (now, committed, used)
                if at_first_commit is not None:
                    finish = at_first_commit(processes)
            if committed >= total and first is not None:
                if finish is not None:
                    finish()
                return Timing(total, first[0], first[1], now, used, first[2])
            await asyncio.sleep(POLL_SECONDS)
        raise SystemExit(f"{name}: did not commit all {total:,} input messages in {TIMEOUT_SECONDS} s")
    finally:
        await admin.close()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()


def timed(
    name: str,
    launches: Sequence[Process],
    bootstrap: str,
    group: str,
    total: int,
    at_first_commit: AtFirstCommit | None = None,
) -> Timing:
    """Launch the processes; time them until the group's committed offsets reach ``total``."""
    return asyncio.run(_timed(name, launches, bootstrap, group, total, at_first_commit))


def baseline(name: str, module: str, python: str, bootstrap: str, scratch: Path, total: int) -> Timing:
    group = f"bench-{module}"
    command = [python, "-m", f"bench.consumers.{module}", bootstrap, group, str(scratch / group)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    return timed(name, [(command, env)], bootstrap, group, total)


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


def leadpulse(workers: int, bootstrap: str, scratch: Path, total: int, app_id: str) -> Timing:
    """``workers`` LeadPulse workers in one group (the catalog, outputs, changelogs: all of it),
    each with its own port and data directory."""
    command = [sys.executable, "-m", "streams.cli", "worker"]
    launches = [(command, leadpulse_env(bootstrap, app_id, scratch / f"{app_id}-{n}")) for n in range(workers)]
    return timed(f"LeadPulse x{workers}", launches, bootstrap, app_id, total)
