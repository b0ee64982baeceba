"""Broker faults: the worker says so, reports not ready, serves no stale figures, and recovers
to exactly the numbers of a worker that never saw the fault."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import pytest

from streams.broker import EmbeddedBroker
from streams.config import load_settings
from streams.engine import changelog_topics
from streams.topics import ensure_topics
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


def provision(bootstrap: str, app_id: str) -> None:
    """What a deployment does for a new, empty cluster: the topics, as the worker declares them."""
    settings = load_settings(broker=bootstrap, app_id=app_id)
    deal_changelogs, global_changelogs = changelog_topics(settings)
    asyncio.run(
        ensure_topics(settings, bootstrap, deal_changelogs=deal_changelogs, global_changelogs=global_changelogs)
    )


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
def test_a_broker_back_empty_makes_the_worker_start_over_from_what_it_holds(store: str, tmp_path: Path) -> None:
    """The broker is killed and comes back empty on the same address (Tansu keeps nothing). The
    worker says so, is not ready meanwhile, starts over once (same process), and then shows exactly
    what a worker that only ever saw the new broker shows: nothing of the old broker's events."""
    messages = simulated_messages(20 * 60)
    again = messages[: len(messages) // 3]  # what the new broker gets: fewer events on every partition
    first = EmbeddedBroker(log_path=tmp_path / "tansu-first.log").start()
    worker = WorkerProcess(
        first.bootstrap,
        "emptied",
        tmp_path / "emptied",
        extra_env={"LEADPULSE_BROKER_SILENCE_SECONDS": "5", "LEADPULSE_STORE": store},
    )
    second = EmbeddedBroker(first.port, log_path=tmp_path / "tansu-second.log")
    fresh = WorkerProcess(first.bootstrap, "fresh", tmp_path / "fresh", extra_env={"LEADPULSE_STORE": store})
    try:
        worker.start()
        asyncio.run(produce(first.bootstrap, messages))
        wait_until(lambda: total(worker.scrape(), "leadpulse_events_processed_total") == len(messages), 90, "input")
        first.send_signal(signal.SIGKILL)
        wait_until(lambda: readiness(worker)[0] == 503, 30, "the worker to say it is not ready")
        assert readiness(worker)[1]["error"].startswith("the broker has not answered for")
        assert not select(worker.scrape(), "leadpulse_calls_total"), "stale figures served while the broker is gone"
        second.start()
        provision(second.bootstrap, "emptied")
        asyncio.run(produce(second.bootstrap, again))

        def counts_the_new_broker_only() -> bool:
            if readiness(worker)[0] != 200:
                return False
            processed = total(worker.scrape(), "leadpulse_events_processed_total")
            assert processed <= len(again), f"ready with the old broker's figures: {processed} events processed"
            return processed == len(again)

        wait_until(counts_the_new_broker_only, 120, "the worker to start over and count the new broker's events")
        fresh.start()  # only ever saw the new broker: the truth to compare with
        wait_until(lambda: total(fresh.scrape(), "leadpulse_events_processed_total") == len(again), 120, "fresh")
        expected, actual = settled_pair(fresh, worker, EVERY_FIGURE)
        assert worker.process is not None and worker.process.poll() is None, "the worker exited"
    finally:
        worker.stop()
        fresh.stop()
        first.stop()
        second.stop()
    assert_same_figures(expected, actual)
    assert total(actual, "leadpulse_calls_total") > 100
    log = (worker.data_dir / "worker.log").read_text()
    assert log.count("starting over from what the broker holds") == 1, "started over more than once"
    assert "the broker lost data this worker holds: " in log
    assert "this worker has started over 1 time(s)" in log
    assert "started over: deleted the " in log  # the writes it had queued for the old broker, if any landed
    assert "exiting without committing" not in log


def embedded_brokers_started(worker: WorkerProcess) -> list[str]:
    log = (worker.data_dir / "worker.log").read_text()
    return re.findall(r"started an embedded Tansu broker on (\S+)\.", log)


def test_the_embedded_broker_exiting_makes_the_worker_start_over_with_a_new_one(tmp_path: Path) -> None:
    """The embedded broker keeps nothing, and nothing restarts it: the worker starts over (same
    process) with a new one, and shows none of the old one's events."""
    messages = simulated_messages(10 * 60)
    worker = WorkerProcess("", "embedded", tmp_path / "embedded", extra_env={"LEADPULSE_BROKER": ""})
    try:
        worker.start()
        assert worker.process is not None
        [bootstrap] = embedded_brokers_started(worker)
        asyncio.run(produce(bootstrap, messages))
        wait_until(lambda: total(worker.scrape(), "leadpulse_events_processed_total") == len(messages), 90, "input")
        children = Path(f"/proc/{worker.process.pid}/task/{worker.process.pid}/children").read_text().split()
        [tansu] = [pid for pid in children if "tansu" in Path(f"/proc/{pid}/cmdline").read_text()]
        os.kill(int(tansu), signal.SIGKILL)
        wait_until(lambda: len(embedded_brokers_started(worker)) == 2 and worker.ready(), 90, "a new broker")
        assert total(worker.scrape(), "leadpulse_events_processed_total") == 0, "the old broker's events"
        later = messages[: len(messages) // 2]
        asyncio.run(produce(embedded_brokers_started(worker)[1], later))
        wait_until(lambda: total(worker.scrape(), "leadpulse_events_processed_total") == len(later), 90, "new input")
        assert worker.process.poll() is None, "the worker exited"
    finally:
        worker.stop()
    log = (worker.data_dir / "worker.log").read_text()
    assert "the embedded broker exited with code -9, and it keeps nothing" in log
    assert log.count("starting over from what the broker holds") == 1
