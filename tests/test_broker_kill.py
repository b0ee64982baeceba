"""Event-sourced means restartable: ``kill -9`` mid-stream changes no final value."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from streams.broker import EmbeddedBroker
from tests.harness import (
    CATALOG_SAMPLES,
    SPEC_SAMPLES,
    WorkerProcess,
    produce,
    select,
    settled_pair,
    simulated_messages,
    total,
    wait_until,
)

pytestmark = pytest.mark.integration

COMPARED = [*SPEC_SAMPLES, *CATALOG_SAMPLES, "leadpulse_events_rejected_total", "leadpulse_events_processed_total"]


def test_kill_9_while_input_flows_ends_with_the_values_of_an_uninterrupted_run(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    messages = simulated_messages(40 * 60)
    assert len(messages) > 10_000
    steady = WorkerProcess(broker.bootstrap, "steady", tmp_path / "steady")
    crashy = WorkerProcess(
        broker.bootstrap, "crashy", tmp_path / "crashy", extra_env={"LEADPULSE_BATCH_MAX_EVENTS": "200"}
    )
    steady.start()
    crashy.start()
    try:
        half = len(messages) // 2
        asyncio.run(produce(broker.bootstrap, messages[:half]))
        # Keep producing the second half while the worker is killed.
        producer = threading.Thread(target=lambda: asyncio.run(produce(broker.bootstrap, messages[half:])))
        producer.start()
        wait_until(
            lambda: total(crashy.scrape(), "leadpulse_events_processed_total") > half * 0.6,
            60,
            "the crashy worker to be partway through",
        )
        crashy.kill()
        producer.join(120)
        crashy.start()
        for worker in (steady, crashy):
            wait_until(
                lambda w=worker: total(w.scrape(), "leadpulse_events_processed_total") == len(messages),
                120,
                f"{worker.app_id} to process all {len(messages)} messages",
            )
        # Live gauges move with the clock: compare scrapes that reflect the same moment.
        expected, actual = settled_pair(steady, crashy, COMPARED)
    finally:
        steady.stop()
        crashy.stop()
    for name in COMPARED:
        assert select(actual, name) == pytest.approx(select(expected, name)), name
    assert total(actual, "leadpulse_calls_total") > 1000
    assert total(actual, "leadpulse_events_duplicate_total") > 0
    assert total(actual, "leadpulse_events_rejected_total") > 0
