"""The series view (followed from changed cells) always equals a full projection of every cell.

Hypothesis plays random batches of deal events (late ones, duplicates, deals moving stage,
first responses that a late touch replaces), moves the clock across hours, days and weeks,
changes which partitions the worker owns and makes the rollups drop what they followed, scraping
in between. After each scrape, every followed family's rows must equal the full projection of the
cells (:func:`streams.metrics.figures.project`, the API's path), and the text served must parse
to what prometheus-client writes for the same rows.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from streams.exporter import series as series_module
from streams.exporter.collector import Ownership
from streams.metrics.figures import FigureReader
from streams.state import rollups as rollups_module
from tests.test_exporter_text import parsed
from tests.test_processor_and_collector import NOW, Harness, call

DEALS = [f"d{number}" for number in range(6)]
REPS = ("ann", "bob", "cy")
HOUR = 3600


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


@st.composite
def deal_event(draw: st.DrawFn) -> tuple[str, int, str, dict]:
    deal = draw(st.sampled_from(DEALS))
    at = NOW - draw(st.integers(0, 9 * 24)) * HOUR + draw(st.integers(0, 3599))
    common = {
        "event_id": f"e{draw(st.integers(0, 60))}-{deal}",  # small id space: duplicates happen
        "occurred_at": iso(at),
        "deal_id": deal,
        "rep_id": draw(st.sampled_from(REPS)),
    }
    kind = draw(st.sampled_from(["stage", "call", "email", "meeting"]))
    if kind == "stage":
        stage = draw(st.sampled_from(["new", "qualified", "proposal", "won", "lost"]))
        fields = {"stage": stage, "amount": draw(st.sampled_from([None, 0, 100, 2500]))}
        fields["source"] = draw(st.sampled_from([None, "referral", "inbound_demo", "partner"]))
        if stage == "lost":
            fields["lost_reason"] = draw(st.sampled_from([None, "price", "timing"]))
        topic = "crm.deal-stages"
    elif kind == "call":
        fields = {
            "call_id": common["event_id"],
            "direction": draw(st.sampled_from(["outbound", "inbound"])),
            "outcome": draw(st.sampled_from(["connected", "no_answer"])),
            "talk_seconds": draw(st.integers(0, 600)),
        }
        topic = "crm.calls"
    elif kind == "email":
        action = draw(st.sampled_from(["sent", "received", "bounced"]))
        fields = {"email_id": common["event_id"], "action": action, "personalized": draw(st.booleans())}
        topic = "crm.emails"
    else:
        fields = {"meeting_id": common["event_id"], "action": draw(st.sampled_from(["held", "booked"]))}
        topic = "crm.meetings"
    return topic, DEALS.index(deal) % 2, deal, {**common, **fields}


step = st.one_of(
    st.tuples(st.just("events"), st.lists(deal_event(), min_size=1, max_size=8)),
    st.tuples(st.just("scrape"), st.sampled_from([0, 1, 30, 26 * 2, 24 * 6 + 1])),  # hours after NOW
    st.tuples(st.just("own"), st.sampled_from([frozenset({0, 1}), frozenset({1}), frozenset({0})])),
    st.tuples(st.just("forget"), st.just(0)),  # the rollups stop following (too many changes, a prune)
)


def assert_view_equals_full_projection(harness: Harness, now: float) -> dict:
    collector = harness.collector
    collector.clock = lambda: now
    harness.profile_sync()
    served = parsed(collector.exposition().decode())
    view_rows = {spec.name: rows.rows() for spec, rows in collector.families() if spec in collector.followed}
    reader = FigureReader(
        harness.rollups,
        harness.directory,
        harness.owned.deal_partitions,
        now,
        collector.source_labels,
        collector.topic_names,
    )
    for spec in collector.followed:
        assert dict(view_rows[spec.name]) == dict(collector._cells(spec, reader)), spec.name
    assert served == parsed(generate_latest(harness.registry).decode())
    return served


@pytest.mark.parametrize("start_over_share", [series_module.START_OVER_SHARE, float("inf")])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=14))
def test_followed_series_equal_a_full_projection_after_any_changes(start_over_share: float, steps: list) -> None:
    """With the default share most small changes start over; with none they are always followed."""
    original, series_module.START_OVER_SHARE = series_module.START_OVER_SHARE, start_over_share
    try:
        play(steps)
    finally:
        series_module.START_OVER_SHARE = original


def play(steps: list) -> None:
    harness = Harness()
    now = NOW
    for kind, argument in steps:
        if kind == "events":
            harness.deals_in(*(harness.message(topic, p, deal, value) for topic, p, deal, value in argument))
        elif kind == "scrape":
            now = NOW + argument * HOUR
        elif kind == "own":
            harness.owned = Ownership(ready=True, deal_partitions=argument, rep_partitions=frozenset({0}))
        else:
            for partition in harness.rollups.partitions():
                harness.rollups.partition(partition).changes = None  # type: ignore[union-attr]
        assert_view_equals_full_projection(harness, now)


def test_too_many_changes_between_scrapes_start_the_view_over(monkeypatch) -> None:
    monkeypatch.setattr(rollups_module, "CHANGES_KEPT", 3)
    harness = Harness()
    assert_view_equals_full_projection(harness, NOW)  # the first read: changes followed from here
    calls = [
        harness.message("crm.calls", 0, "a", {**call("a", REPS[n % 3], NOW - 60 * n, f"c{n}"), "outcome": "no_answer"})
        for n in range(1, 6)
    ]
    harness.deals_in(*calls)
    assert harness.rollups.partition(0).changes is None  # type: ignore[union-attr]
    served = assert_view_equals_full_projection(harness, NOW)
    assert sum(value for name, _, value in served["leadpulse_calls"][2]) == 5
