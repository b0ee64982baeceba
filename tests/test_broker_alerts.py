"""SLA alerts and lead responses on a real broker, driven by the clock alone.

SLA steps of 4 s and 40 s. A lead left alone gets one ``sla_breach`` per step, each within the
step + 5 s and with no further input; a touch gives ``sla_resolved``; a graceful restart in
between repeats nothing, and ``kill -9`` before a crossing loses nothing (the alert comes when
the worker is back). Alerts are read back from ``leadpulse.alerts`` to the end of the topic.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams.kafka.broker import EmbeddedBroker
from tests.harness import WorkerProcess, produce, read_topic, wait_until

pytestmark = pytest.mark.integration

STEPS = (4.0, 40.0)
PROMPTNESS_SECONDS = 5.0
ENV = {"LEADPULSE_SLA_DEFAULT_SECONDS": json.dumps(list(STEPS))}


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


def lead(deal: str, at: float) -> tuple[str, bytes, bytes]:
    event = {"event_id": f"{deal}-new", "occurred_at": iso(at), "deal_id": deal, "rep_id": "ann", "stage": "new"}
    return ("crm.deal-stages", deal.encode(), json.dumps(event).encode())


def email_sent(deal: str, at: float, event_id: str) -> tuple[str, bytes, bytes]:
    event = {
        "event_id": event_id,
        "occurred_at": iso(at),
        "deal_id": deal,
        "rep_id": "ann",
        "email_id": event_id,
        "action": "sent",
    }
    return ("crm.emails", deal.encode(), json.dumps(event).encode())


def profile() -> tuple[str, bytes, bytes]:
    value = {"rep_id": "ann", "team": "emea", "role": "sdr", "updated_at": iso(time.time() - 86400)}
    return ("crm.reps", b"ann", json.dumps(value).encode())


def alerts(bootstrap: str) -> list[tuple[dict, float]]:
    """Every alert in the topic with the time it was published."""
    return [(json.loads(r.value), r.timestamp / 1000) for r in asyncio.run(read_topic(bootstrap, "leadpulse.alerts"))]


def ids(bootstrap: str) -> list[str]:
    return sorted(alert["alert_id"] for alert, _ in alerts(bootstrap))


def assert_prompt(found: list[tuple[dict, float]], deal: str, created: float) -> None:
    """Each breach of ``deal`` was published after its step and within the step + 5 s."""
    for alert, published in found:
        if alert["deal_id"] == deal and alert["kind"] == "sla_breach":
            crossed = created + STEPS[alert["step"] - 1]
            assert datetime.fromisoformat(alert["at"]).timestamp() == pytest.approx(crossed, abs=0.01)
            assert crossed <= published <= crossed + PROMPTNESS_SECONDS, (alert, published - crossed)


def test_steps_fire_on_time_a_touch_resolves_and_a_graceful_restart_repeats_nothing(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    worker = WorkerProcess(broker.bootstrap, "alerts", tmp_path / "worker", extra_env=ENV).start()
    try:
        created = time.time()
        asyncio.run(produce(broker.bootstrap, [profile(), lead("alone", created), lead("touched", created)]))
        first = {"sla_breach:1@alone", "sla_breach:1@touched"}
        wait_until(lambda: set(ids(broker.bootstrap)) >= first, 20, "both leads' first step")
        assert ids(broker.bootstrap) == sorted(first)
        asyncio.run(produce(broker.bootstrap, [email_sent("touched", time.time(), "touch-1")]))
        wait_until(lambda: "sla_resolved:1@touched" in ids(broker.bootstrap), 20, "the touched lead resolved")
        worker.stop()
        worker.start()  # a graceful restart between the steps
        assert time.time() < created + STEPS[1] - 2, "the restart took too long for this test's second step"
        final = sorted([*first, "sla_resolved:1@touched", "sla_breach:2@alone"])
        wait_until(lambda: "sla_breach:2@alone" in ids(broker.bootstrap), STEPS[1] + 20, "the second step")
        found = alerts(broker.bootstrap)
    finally:
        worker.stop()
    assert sorted(alert["alert_id"] for alert, _ in found) == final  # exactly once each, nothing repeated
    assert_prompt(found, "alone", created)
    assert_prompt(found, "touched", created)
    by_id = {alert["alert_id"]: alert for alert, _ in found}
    assert by_id["sla_breach:2@alone"]["threshold_seconds"] == STEPS[1]
    assert (by_id["sla_breach:1@alone"]["rep"], by_id["sla_breach:1@alone"]["team"]) == ("ann", "emea")
    assert by_id["sla_resolved:1@touched"]["resolution"] == "touched"


def test_kill_9_before_a_crossing_loses_no_alert(broker: EmbeddedBroker, tmp_path: Path) -> None:
    worker = WorkerProcess(broker.bootstrap, "alerts-kill", tmp_path / "worker", extra_env=ENV).start()
    try:
        created = time.time()
        asyncio.run(produce(broker.bootstrap, [profile(), lead("orphan", created)]))
        wait_until(
            lambda: worker.scrape_value("leadpulse_leads_awaiting_response", rep="ann", team="emea") == 1,
            10,
            "the lead",
        )
        worker.kill()  # before its first step
        wait_until(lambda: time.time() > created + STEPS[0] + 0.5, STEPS[0] + 2, "the first step to pass while down")
        worker.start()
        wait_until(lambda: "sla_breach:1@orphan" in ids(broker.bootstrap), 20, "the first step after the restart")
        wait_until(lambda: "sla_breach:2@orphan" in ids(broker.bootstrap), STEPS[1] + 20, "the second step")
        found = alerts(broker.bootstrap)
    finally:
        worker.stop()
    assert sorted(alert["alert_id"] for alert, _ in found) == ["sla_breach:1@orphan", "sla_breach:2@orphan"]
    step_two = next(published for alert, published in found if alert["step"] == 2)
    assert created + STEPS[1] <= step_two <= created + STEPS[1] + PROMPTNESS_SECONDS


def test_lead_responses_are_published_once_and_corrected_by_a_late_event(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    worker = WorkerProcess(broker.bootstrap, "responses", tmp_path / "worker", extra_env=ENV).start()

    def responses() -> list[dict]:
        return [json.loads(r.value) for r in asyncio.run(read_topic(broker.bootstrap, "leadpulse.lead-responses"))]

    try:
        # The profile first: a profile arriving after the deal would (rightly) correct its team.
        asyncio.run(produce(broker.bootstrap, [profile()]))
        wait_until(
            lambda: worker.scrape_value("leadpulse_leads_awaiting_response", rep="ann", team="emea") == 0, 10, "ann"
        )
        created = time.time() - 60
        asyncio.run(
            produce(broker.bootstrap, [lead("quick", created), email_sent("quick", created + 30, "late-touch")])
        )
        wait_until(lambda: len(responses()) == 1, 20, "the first response")
        # A touch logged late, 2 s after creation, moves the first response: revision 2.
        asyncio.run(produce(broker.bootstrap, [email_sent("quick", created + 2, "early-touch")]))
        wait_until(lambda: len(responses()) == 2, 20, "the corrected response")
        records = responses()
    finally:
        worker.stop()
    first, corrected = sorted(records, key=lambda record: record["revision"])
    assert (first["revision"], first["response_seconds"], first["sla_breached"]) == (1, pytest.approx(30), True)
    assert (corrected["revision"], corrected["first_touch_event_id"]) == (2, "early-touch")
    assert (corrected["response_seconds"], corrected["sla_breached"]) == (pytest.approx(2), False)
    assert (corrected["rep"], corrected["team"], corrected["sla_seconds"]) == ("ann", "emea", STEPS[0])
