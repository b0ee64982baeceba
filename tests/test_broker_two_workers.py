"""Two workers in one group: each exports the partitions it owns; their slices add up exactly."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from pathlib import Path

import pytest

from streams.broker import EmbeddedBroker
from tests.dataset import SLA_BY_SOURCE, build
from tests.harness import CATALOG_SAMPLES, SPEC_SAMPLES, WorkerProcess, produce, select, total, wait_until
from tests.reference import expected_metrics
from tests.test_broker_exact_values import assert_family

pytestmark = pytest.mark.integration


def scrape_pair(workers: list[WorkerProcess]) -> tuple[dict, float, list[dict]]:
    """Both workers' samples combined (sums; max for ages), the scrape time, and each slice."""
    while True:  # avoid a scrape that straddles an hour boundary
        before = time.time()
        slices = [worker.scrape() for worker in workers]
        scraped_at = time.time()
        if int(before // 3600) == int(scraped_at // 3600):
            break
    combined: dict = defaultdict(float)
    for samples in slices:
        for (name, labels), value in samples.items():
            if name in ("leadpulse_lead_oldest_awaiting_seconds", "leadpulse_last_event_timestamp_seconds"):
                combined[(name, labels)] = max(combined[(name, labels)], value)
            else:
                combined[(name, labels)] += value
    return combined, scraped_at, slices


def check(actual: dict, expected: dict) -> None:
    for name in [*SPEC_SAMPLES, *CATALOG_SAMPLES]:
        if name.endswith("_bucket"):  # the engine exports every bucket, zeros included
            for labels in select(actual, name):
                expected.setdefault((name, labels), 0.0)
        assert_family(actual, expected, name)


def test_two_workers_split_the_partitions_and_their_slices_add_up(broker: EmbeddedBroker, tmp_path: Path) -> None:
    data = build(time.time())
    env = {"LEADPULSE_SLA_BY_SOURCE": json.dumps(SLA_BY_SOURCE)}
    workers = [WorkerProcess(broker.bootstrap, "pair", tmp_path / f"worker-{n}", extra_env=env) for n in (1, 2)]
    for worker in workers:
        worker.start()
    try:
        # The second member's join rebalances the first: wait until both are ready again.
        wait_until(lambda: all(worker.ready() for worker in workers), 60, "both workers ready")
        sent = asyncio.run(produce(broker.bootstrap, data.messages))
        wait_until(
            lambda: sum(total(worker.scrape(), "leadpulse_events_processed_total") for worker in workers) == sent,
            90,
            f"all {sent} messages processed by the pair",
        )
        # Rep profiles reach the other worker through the global table's changelog a moment later.
        deadline = time.monotonic() + 60
        while True:
            combined, scraped_at, slices = scrape_pair(workers)
            expected = expected_metrics(
                profiles=data.profiles,
                events=data.events,
                now=scraped_at,
                sla_default=300.0,
                sla_by_source=SLA_BY_SOURCE,
            )
            try:
                check(combined, expected)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        for worker in workers:
            worker.stop()
    assert all(total(samples, "leadpulse_table_keys") > 0 for samples in slices), "one worker owns no partition"
