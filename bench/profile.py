"""Where one LeadPulse worker spends its catch-up: py-spy samples of its main thread, top entries.

A worker of its own group reads the throughput dataset; ``py-spy record --native`` attaches at its
first commit (start-up excluded) and stops (SIGINT: py-spy writes what it has) once the group has
committed all input. Native frames matter: the core is compiled with mypyc, whose functions
cProfile cannot see. py-spy comes from PyPI into the benchmark's own virtualenv (``dev.py``).

Each entry is a function with the share of main-thread samples it was on the stack for
(inclusive) or on top of it (self); the mypyc names (``CPyDef_rollups___Rollups___apply``) read
as Python's (``rollups.Rollups.apply``).
"""

from __future__ import annotations

import collections
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import throughput

MAIN_THREAD = "cmd_worker"  # on every stack of the worker's main thread (streams/cli.py)
# Frames every sample shares or that only move control: left out of the ranking.
_PLUMBING = re.compile(
    r"^(0x[0-9a-f]+|Py_DECREF|Py_INCREF|_run_code|_run_module_as_main|<module>|main|cmd_worker|run_worker|"
    r"Worker\.execute_from_commandline|BaseEventLoop\.\w+|Handle\._run|task_step(_impl)?|TaskStepMethWrapper_call|"
    r"CPyIter_Send|CPyDunder_am_send.*|.*_mypyc_generator_helper__|Service\._execute_task|Fetcher\._fetcher|"
    r"Consumer\.(getmany|_drain_messages)|FetchedBatches\._wait_next_records)$"
)


@dataclass(frozen=True)
class Profile:
    samples: int
    inclusive: list[tuple[str, float]]  # (function, share of samples)
    self_time: list[tuple[str, float]]


def readable(frame: str) -> str:
    """A py-spy frame as a function name: file and line dropped, mypyc's C names as Python's."""
    name = re.sub(r" \(.*\)$", "", frame)
    compiled = re.fullmatch(r"CPy(?:Def|Py)_(\w+?)___(\w+)", name)
    if compiled:
        module, rest = compiled.groups()
        return f"{module}.{rest.replace('___', '.')}"
    return name


def summarize(raw: str, top: int = 15, within: str | None = None) -> Profile:
    """The top entries of py-spy's raw output (``stack;frames count`` lines), main thread only;
    with ``within``, only the samples inside that function (shares of those)."""
    inclusive: collections.Counter[str] = collections.Counter()
    self_time: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if MAIN_THREAD not in stack or not count.isdigit():
            continue
        frames = [readable(frame) for frame in stack.split(";")]
        if within is not None and within not in frames:
            continue
        samples += int(count)
        for name in set(frames):
            if not _PLUMBING.match(name):
                inclusive[name] += int(count)
        self_time[frames[-1]] += int(count)
    share = max(samples, 1)
    return Profile(
        samples,
        [(name, n / share) for name, n in inclusive.most_common(top)],
        [(name, n / share) for name, n in self_time.most_common(top)],
    )


class Sampler:
    """``py-spy record --native`` of one process into a raw file, until :meth:`stop`."""

    def __init__(self, py_spy: str, pid: int, output: Path, rate: int) -> None:
        self.output = output
        record = ["record", "--native", "--rate", str(rate), "--format", "raw", "--output", str(output)]
        self.process = subprocess.Popen(
            [py_spy, *record, "--pid", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def stop(self) -> None:
        """Stop sampling (SIGINT: py-spy writes what it sampled); fails if py-spy did."""
        self.process.send_signal(signal.SIGINT)
        if self.process.wait(120) != 0 or not self.output.exists():
            raise SystemExit(f"py-spy failed ({self.process.returncode}); it needs ptrace (root or CAP_SYS_PTRACE)")

    def kill(self) -> None:
        """Stop it without waiting, if it still runs (after a failure elsewhere)."""
        if self.process.poll() is None:
            self.process.kill()


def measure(py_spy: str, bootstrap: str, scratch: Path, total: int, app_id: str = "bench-profile") -> Profile:
    output = scratch / f"{app_id}.raw"
    samplers: list[Sampler] = []

    def start(processes: Sequence[subprocess.Popen]) -> Callable[[], None]:
        samplers.append(Sampler(py_spy, processes[0].pid, output, rate=100))
        return samplers[0].stop

    env = throughput.leadpulse_env(bootstrap, app_id, scratch / app_id)
    worker = ([sys.executable, "-m", "streams.cli", "worker"], env)
    try:
        throughput.timed("profile", [worker], bootstrap, app_id, total, at_first_commit=start)
    finally:
        for sampler in samplers:
            sampler.kill()
    return summarize(output.read_text())


def table(profile: Profile, title: str) -> list[str]:
    out = [f"\n{title}; share of samples (Py_DECREF or an address on top: compiled code py-spy cannot name)"]
    out.append(f"  {'on the stack (inclusive)':60} {'on top (self)':60}")
    for (name, share), (top_name, top_share) in zip(profile.inclusive, profile.self_time, strict=False):
        out.append(f"  {share:6.1%} {name[:52]:52} {top_share:6.1%} {top_name[:52]}")
    return out
