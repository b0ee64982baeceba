"""Rebalances both ways while events flow: a third worker joins a pair, then one of the first two
leaves. The workers that remain export, between them, exactly the figures of a worker that read the
same input alone (nothing exported twice, nothing lingering on a worker that gave partitions away),
and the alerts and lead responses they published are those it published: none missed, a repeat
only ever under the same id."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict
from pathlib import Path

import pytest

from streams.kafka.broker import EmbeddedBroker
from tests.harness import (
    EVERY_FIGURE,
    Sample,
    WorkerProcess,
    assert_same_figures,
    produce,
    read_topic,
    select,
    simulated_messages,
    total,
    wait_until,
)

pytestmark = pytest.mark.integration

MAXIMA = {"leadpulse_lead_oldest_awaiting_seconds", "leadpulse_last_event_timestamp_seconds"}


def outputs(prefix: str) -> dict[str, str]:
    return {"LEADPULSE_TOPICS__ALERTS": f"{prefix}.alerts", "LEADPULSE_TOPICS__LEAD_RESPONSES": f"{prefix}.responses"}


def combined(workers: list[WorkerProcess]) -> dict[Sample, float]:
    """The workers' figures as Prometheus would aggregate them: sums, and maxima for ages."""
    figures: dict[Sample, float] = defaultdict(float)
    for worker in workers:
        for (name, labels), value in worker.scrape().items():
            key = (name, labels)
            figures[key] = max(figures[key], value) if name in MAXIMA else figures[key] + value
    return dict(figures)


def settled(truth: WorkerProcess, workers: list[WorkerProcess]) -> tuple[dict, dict]:
    """The truth's figures and the workers' combined, at the same moment (see harness.settled_pair)."""
    for _ in range(20):
        before, together, after = truth.scrape(), combined(workers), truth.scrape()
        if all(select(before, name) == select(after, name) for name in EVERY_FIGURE):
            return before, together
    raise AssertionError("the truth's figures kept moving between scrapes")


def published(bootstrap: str, prefix: str) -> tuple[list[str], dict[str, dict]]:
    """The alert ids, in order, and each deal's latest lead response (highest revision)."""
    alerts = [json.loads(record.value)["alert_id"] for record in asyncio.run(read_topic(bootstrap, f"{prefix}.alerts"))]
    latest: dict[str, dict] = {}
    for record in asyncio.run(read_topic(bootstrap, f"{prefix}.responses")):
        response = json.loads(record.value)
        if response["revision"] >= latest.get(response["deal_id"], {}).get("revision", 0):
            latest[response["deal_id"]] = response
    return alerts, latest


def still_owed(alerts: list[str]) -> set[str]:
    """The breach alerts of leads that still wait (no resolution published): owed whatever the
    input's timing, since every step they crossed is."""
    resolved = {alert.split("@", 1)[1] for alert in alerts if alert.startswith("sla_resolved")}
    return {alert for alert in alerts if alert.startswith("sla_breach") and alert.split("@", 1)[1] not in resolved}


def content(responses: dict[str, dict]) -> dict[str, dict]:
    return {deal: {k: v for k, v in response.items() if k != "revision"} for deal, response in responses.items()}


def produce_in_background(bootstrap: str, messages: list) -> threading.Thread:
    thread = threading.Thread(target=lambda: asyncio.run(produce(bootstrap, messages)))
    thread.start()
    return thread


def test_a_worker_joins_and_another_leaves_while_events_flow(broker: EmbeddedBroker, tmp_path: Path) -> None:
    messages = simulated_messages(30 * 60)
    third = len(messages) // 3
    group = [
        WorkerProcess(broker.bootstrap, "trio", tmp_path / f"worker-{name}", extra_env=outputs("trio"))
        for name in "abc"
    ]
    first, leaving, joining = group
    truth = WorkerProcess(broker.bootstrap, "truth", tmp_path / "truth", extra_env=outputs("truth"))
    try:
        first.start()
        leaving.start()
        wait_until(lambda: first.ready() and leaving.ready(), 90, "the first two workers ready")
        asyncio.run(produce(broker.bootstrap, messages[:third]))
        flowing = produce_in_background(broker.bootstrap, messages[third : 2 * third])
        joining.start()  # joins while the second third flows
        flowing.join(120)
        wait_until(lambda: all(worker.ready() for worker in group), 120, "all three workers ready")
        flowing = produce_in_background(broker.bootstrap, messages[2 * third :])
        leaving.stop()  # leaves while the last third flows
        flowing.join(120)
        remaining = [first, joining]
        processed: list[float] = []

        def all_processed() -> bool:
            processed.append(total(combined(remaining), "leadpulse_events_processed_total"))
            return all(worker.ready() for worker in remaining) and processed[-1] == len(messages)

        try:
            wait_until(all_processed, 180, f"the remaining workers to have processed all {len(messages)} messages")
        except AssertionError as failure:
            raise AssertionError(f"{failure}; they export {processed[-1:]} processed") from None
        truth.start()
        wait_until(lambda: truth.has_processed(len(messages)), 120, "the truth")
        expected, actual = settled(truth, remaining)
        found: dict[str, tuple] = {}

        def same_outputs() -> bool:
            # What the group published depends on when the input arrived (a lead it saw waiting was
            # alerted; a first response it saw change was corrected), so it may have published more
            # than the truth. What cannot depend on it: the alerts still owed for leads that wait,
            # and each deal's latest lead response.
            found["trio"], found["truth"] = published(broker.bootstrap, "trio"), published(broker.bootstrap, "truth")
            (trio_alerts, trio_responses), (truth_alerts, truth_responses) = found["trio"], found["truth"]
            return still_owed(truth_alerts) <= set(trio_alerts) and content(trio_responses) == content(truth_responses)

        try:
            wait_until(same_outputs, 60, "the group to have published what the truth did")
        except AssertionError as failure:
            (trio_alerts, trio_responses), (truth_alerts, truth_responses) = found["trio"], found["truth"]
            differ = sorted(
                deal for deal in truth_responses if content(trio_responses).get(deal) != content(truth_responses)[deal]
            )
            raise AssertionError(
                f"{failure}: owed alerts missing {sorted(still_owed(truth_alerts) - set(trio_alerts))[:10]};"
                f" latest responses differ for {differ[:10]}"
            ) from None
    finally:
        for worker in [*group, truth]:
            worker.stop()
    assert_same_figures(expected, actual)
    assert total(actual, "leadpulse_calls_total") > 500
    (alerts, responses), (truth_alerts, _) = found["trio"], found["truth"]
    assert len(still_owed(truth_alerts)) > 5 and len(responses) > 50
    assert still_owed(alerts) >= still_owed(truth_alerts)
