"""Upgrades in place: a worker of this code starts on what the last release wrote and shows the
same figures.

The release's sources come from this repository's history (``git archive RELEASE``) and run from
that tree (its directory and ``PYTHONPATH``: ``python -m`` imports from the working directory first)
with this virtualenv's libraries: the old worker folds the dataset into
RocksDB and the changelogs and stops; a worker of this code then starts on the same RocksDB
directory (the in-place upgrade), and another on an empty one, recovering from the old changelogs
(a rebalance onto a new machine). Both must export what the old worker exported.

``RELEASE`` is the commit deployments run: move it forward when a release lands whose records differ
from the one before (the test then guards the next change).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tarfile
import time
from io import BytesIO
from pathlib import Path

import pytest

from streams.kafka.broker import EmbeddedBroker
from tests.dataset import SLA_BY_SOURCE, build
from tests.harness import Sample, WorkerProcess, produce, wait_until
from tests.reference import in_metrics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
RELEASE = "de79b80"  # landed 2026-12-04: deals_by_id_v2, intake_by_partition_v2, rep_profiles_v2 records
# Figures that move with the clock between two scrapes, not with the state.
MOVING = {"leadpulse_lead_oldest_awaiting_seconds", "leadpulse_event_time_lag_seconds", "leadpulse_build_info"}


def release_tree(destination: Path) -> Path:
    """The release's sources, from git: a missing commit fails here (CI clones the history)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", RELEASE], capture_output=True, check=False
    )
    assert archive.returncode == 0, f"git archive {RELEASE}: {archive.stderr.decode()}"
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(destination, filter="data")
    return destination


def figures(worker: WorkerProcess) -> dict[Sample, float]:
    """What the worker exports, as this code's /metrics defines it (the release exported some
    periods the series budget has cut since), without the figures that move with the clock."""
    return {sample: value for sample, value in in_metrics(worker.scrape()).items() if sample[0] not in MOVING}


def same_periods(first: dict[Sample, float], second: dict[Sample, float], hour_changed: bool) -> tuple[dict, dict]:
    """Both without the hour's series when an hour boundary fell between the two scrapes."""

    def keep(sample: Sample) -> bool:
        return not hour_changed or dict(sample[1]).get("period") != "hour"

    return {s: v for s, v in first.items() if keep(s)}, {s: v for s, v in second.items() if keep(s)}


def test_this_code_reads_what_the_release_wrote(broker: EmbeddedBroker, tmp_path: Path) -> None:
    old_tree = release_tree(tmp_path / "release")
    which = subprocess.run(
        [sys.executable, "-c", "import streams; print(streams.__file__)"],
        env={**os.environ, "PYTHONPATH": str(old_tree)},
        cwd=old_tree,
        capture_output=True,
        text=True,
        check=True,
    )
    assert which.stdout.strip().startswith(str(old_tree)), which.stdout  # the old worker runs the old code
    data = build(time.time())
    env = {"LEADPULSE_SLA_BY_SOURCE": json.dumps(SLA_BY_SOURCE), "LEADPULSE_STORE": "rocksdb"}
    state = tmp_path / "state"
    old = WorkerProcess(
        broker.bootstrap, "upgrade", state, extra_env={**env, "PYTHONPATH": str(old_tree)}, cwd=old_tree
    )
    old.start()
    try:
        sent = asyncio.run(produce(broker.bootstrap, data.messages))
        wait_until(lambda: old.has_processed(sent), 90, "the release folding the dataset")
        before, hour_before = figures(old), int(time.time() // 3600)
    finally:
        old.stop()
    assert before[("leadpulse_events_processed_total", frozenset({("topic", "crm.deal-stages")}))] > 0

    in_place = WorkerProcess(broker.bootstrap, "upgrade", state, extra_env=env).start()
    try:
        wait_until(lambda: in_place.has_processed(sent), 90, "the upgraded worker's figures")
        after = figures(in_place)
    finally:
        in_place.stop()
    expected, got = same_periods(before, after, int(time.time() // 3600) != hour_before)
    assert got == expected

    memory = {**env, "LEADPULSE_STORE": "memory"}  # everything from the changelogs
    moved = WorkerProcess(broker.bootstrap, "upgrade", tmp_path / "new-machine", extra_env=memory).start()
    try:
        wait_until(lambda: moved.has_processed(sent), 90, "a new machine recovering the release's changelogs")
        recovered = figures(moved)
    finally:
        moved.stop()
    expected, got = same_periods(before, recovered, int(time.time() // 3600) != hour_before)
    assert got == expected
