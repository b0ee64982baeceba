"""Broker faults: the worker says so, reports not ready, serves no stale figures, and recovers
to exactly the numbers of a worker that never saw the fault."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from streams.broker import EmbeddedBroker
from tests.harness import (
    EVERY_FIGURE,
    WorkerProcess,
    assert_same_figures,
    get_status,
    produce,
    select,
    settled_pair,
    simulated_messages,
    total,
    wait_until,
)

pytestmark = pytest.mark.integration

FREEZE_SECONDS = 20  # the fault's length (SPEC of the reliability issue), not a wait for a condition


def readiness(worker: WorkerProcess) -> tuple[int, dict]:
    return get_status(f"{worker.url}/health/ready")


def test_a_frozen_broker_makes_the_worker_not_ready_until_it_answers_then_nothing_is_lost(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    messages = simulated_messages(20 * 60)
    half = len(messages) // 2
    worker = WorkerProcess(
        broker.bootstrap, "frozen", tmp_path / "frozen", extra_env={"LEADPULSE_BROKER_SILENCE_SECONDS": "5"}
    )
    worker.start()
    fresh = WorkerProcess(broker.bootstrap, "fresh", tmp_path / "fresh")
    try:
        asyncio.run(produce(broker.bootstrap, messages[:half]))
        wait_until(lambda: total(worker.scrape(), "leadpulse_events_processed_total") == half, 60, "the first half")
        frozen_at = time.monotonic()
        broker.send_signal(signal.SIGSTOP)
        try:
            wait_until(lambda: readiness(worker)[0] == 503, FREEZE_SECONDS, "the worker to say it is not ready")
            _, body = readiness(worker)
            assert body["error"].startswith("the broker has not answered for"), body
            figures = worker.scrape()
            assert not select(figures, "leadpulse_calls_total"), "stale figures served while the broker is silent"
            assert total(figures, "leadpulse_build_info") == 1
            time.sleep(max(0.0, FREEZE_SECONDS - (time.monotonic() - frozen_at)))
        finally:
            broker.send_signal(signal.SIGCONT)
        wait_until(lambda: readiness(worker)[0] == 200, 120, "the worker to be ready again")
        asyncio.run(produce(broker.bootstrap, messages[half:]))
        wait_until(
            lambda: total(worker.scrape(), "leadpulse_events_processed_total") == len(messages), 120, "all messages"
        )
        fresh.start()  # never saw the fault: the truth to compare with
        wait_until(
            lambda: total(fresh.scrape(), "leadpulse_events_processed_total") == len(messages), 120, "the fresh run"
        )
        expected, actual = settled_pair(fresh, worker, EVERY_FIGURE)
        assert worker.process is not None and worker.process.poll() is None, "the worker exited"
    finally:
        worker.stop()
        fresh.stop()
    assert_same_figures(expected, actual)
    assert total(actual, "leadpulse_calls_total") > 500
    log = (worker.data_dir / "worker.log").read_text()
    assert "the broker has not answered for" in log and "the broker answers again" in log
    assert "exiting without committing" not in log
