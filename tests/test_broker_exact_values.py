"""A real worker on a real Tansu broker, fed a known dataset, scraped over HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from streams.kafka.broker import EmbeddedBroker
from tests.dataset import SLA_BY_SOURCE, build
from tests.harness import (
    CATALOG_SAMPLES,
    SPEC_SAMPLES,
    WorkerProcess,
    consume,
    parse_exposition,
    produce,
    select,
    total,
    wait_until,
)
from tests.reference import expected_metrics, in_metrics
from tests.test_deploy import tool

ZONE = ZoneInfo("America/New_York")
FISCAL_FIRST_MONTH = 4


def local(at: float) -> datetime:
    return datetime.fromtimestamp(at, ZONE)


pytestmark = pytest.mark.integration


def assert_family(actual: dict, expected: dict, name: str, tolerance: float = 1e-6) -> None:
    got, want = select(actual, name), select(expected, name)
    assert set(got) == set(want), (
        f"{name}: label sets differ\n extra {set(got) - set(want)}\n missing {set(want) - set(got)}"
    )
    wrong = {
        tuple(sorted(labels)): (got[labels], want[labels])
        for labels in want
        if abs(got[labels] - want[labels]) > tolerance
    }
    assert not wrong, f"{name}: (actual, expected) differ for {wrong}"


def test_known_dataset_gives_exactly_the_spec_values(broker: EmbeddedBroker, tmp_path: Path) -> None:
    """Reported in New York (DST) with a fiscal year from April: the reference model computes the
    periods the same way, from the spec (the other broker tests report in UTC, calendar quarters)."""
    data = build(time.time())
    env = {
        "LEADPULSE_SLA_BY_SOURCE": json.dumps(SLA_BY_SOURCE),
        "LEADPULSE_REPORTING_TIMEZONE": ZONE.key,
        "LEADPULSE_FISCAL_YEAR_START_MONTH": str(FISCAL_FIRST_MONTH),
    }
    worker = WorkerProcess(broker.bootstrap, "exact", tmp_path / "worker", extra_env=env)
    worker.start()
    try:
        sent = asyncio.run(produce(broker.bootstrap, data.messages))
        assert sent == len(data.messages)
        wait_until(
            lambda: total(worker.scrape(), "leadpulse_events_processed_total") == sent,
            60,
            f"all {sent} messages to be processed",
        )
        while True:  # avoid a scrape that straddles an hour boundary
            before = time.time()
            exposition = worker.scrape_text()
            scraped_at = time.time()
            if int(before // 3600) == int(scraped_at // 3600):
                break
        samples = parse_exposition(exposition)
    finally:
        worker.stop()

    expected = in_metrics(
        expected_metrics(
            profiles=data.profiles,
            events=data.events,
            now=scraped_at,
            sla_default=300.0,
            sla_by_source=SLA_BY_SOURCE,
            zone=ZONE,
            fiscal_first_month=FISCAL_FIRST_MONTH,
        )
    )
    for name in [*SPEC_SAMPLES, *CATALOG_SAMPLES]:
        if name.endswith("_bucket"):  # the engine exports every bucket, zeros included
            for labels in select(samples, name):
                expected.setdefault((name, labels), 0.0)
        assert_family(samples, expected, name)
    # The real worker's exposition passes Prometheus' own linter.
    lint = subprocess.run(
        [tool("promtool"), "check", "metrics"], input=exposition, capture_output=True, text=True, timeout=60
    )
    assert lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(), lint.stdout + lint.stderr
    # Ages move with the clock: the engine read them within the scrape window.
    assert_family(samples, expected, "leadpulse_lead_oldest_awaiting_seconds", tolerance=scraped_at - before + 1)
    rejected = Counter((topic, reason) for topic, _, _, reason in data.bad)
    assert {tuple(sorted(k)): v for k, v in select(samples, "leadpulse_events_rejected_total").items()} == {
        (("reason", reason), ("topic", topic)): count for (topic, reason), count in rejected.items()
    }
    # Spot checks of hand-computed edge cases, independent of the reference model.
    # Source "event": the handoff (1000 s, bob, emea), eve before her move (300 s, emea) and after it
    # (60 s, apac). All within the last two hours, so within the month unless the month just began.
    if local(data.now - 2 * 3600).month == local(scraped_at).month:
        by_source = select(samples, "leadpulse_first_response_by_source_seconds_sum")
        event = {"source": "event", "period": "month"}
        assert by_source[frozenset({"team": "emea", **event}.items())] == pytest.approx(1300.0)
        assert by_source[frozenset({"team": "apac", **event}.items())] == pytest.approx(60.0)
    ghost = frozenset({"rep": "ghost", "team": "unassigned"}.items())
    assert select(samples, "leadpulse_leads_awaiting_response")[ghost] == 1
    # A rep who moved team half an hour ago: the call before in the old team, the email after in the new.
    mover_call = {"rep": "eve", "team": "emea", "direction": "outbound", "outcome": "busy"}
    assert select(samples, "leadpulse_calls_total")[frozenset(mover_call.items())] == 1
    mover_email = {"rep": "eve", "team": "apac", "action": "sent"}
    assert select(samples, "leadpulse_emails_total")[frozenset(mover_email.items())] == 1
    assert select(samples, "leadpulse_leads_awaiting_response")[frozenset({"rep": "eve", "team": "apac"}.items())] == 1
    # The upsell, won by dee after a proposal: it keeps the deal type its first stage event gave.
    if local(data.now - 3800).date() == local(scraped_at).date():  # won at now - 3,800 s: today
        won_upsell = {"team": "americas", "deal_type": "upsell", "period": "day", "currency": "USD"}
        assert select(samples, "leadpulse_won_amount_by_deal_type")[frozenset(won_upsell.items())] == 12000


def test_bad_input_is_dead_lettered_with_its_bytes_and_reason(broker: EmbeddedBroker, tmp_path: Path) -> None:
    data = build(time.time(), random_deals=5)
    worker = WorkerProcess(broker.bootstrap, "deadletter", tmp_path / "worker").start()
    try:
        sent = asyncio.run(produce(broker.bootstrap, data.messages))
        records = asyncio.run(consume(broker.bootstrap, "leadpulse.dead-letter", len(data.bad)))
        wait_until(lambda: worker.has_processed(sent), 60, "processing")
    finally:
        worker.stop()
    letters = [json.loads(record.value) for record in records]
    assert len(letters) == len(data.bad)
    by_bytes = {base64.b64decode(letter["value_base64"]): letter for letter in letters}
    for topic, key, value, reason in data.bad:
        letter = by_bytes[value]
        assert (letter["topic"], letter["reason"]) == (topic, reason)
        assert base64.b64decode(letter["key_base64"]) == key
        assert letter["offset"] >= 0 and letter["partition"] >= 0 and letter["detail"]


def test_restart_recovers_state_from_the_changelog(broker: EmbeddedBroker, tmp_path: Path) -> None:
    data = build(time.time(), random_deals=30)
    worker = WorkerProcess(broker.bootstrap, "restart", tmp_path / "worker").start()
    sent = asyncio.run(produce(broker.bootstrap, data.messages))
    wait_until(lambda: worker.has_processed(sent), 60, "processing")
    before = worker.scrape()
    worker.stop()
    worker.start()
    after = worker.scrape()
    worker.stop()
    stable = [name for name in SPEC_SAMPLES if "awaiting" not in name] + [
        "leadpulse_events_rejected_total",
        "leadpulse_events_processed_total",
    ]
    for name in stable:
        assert select(after, name) == select(before, name), name
