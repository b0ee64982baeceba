"""The simulated floor the demo replays: which history, its lifecycles, its switch to live."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import orjson
import pytest

from streams.config import load_settings
from streams.fold.periods import Calendar
from streams.simulator.floor import GIVEN_UP_AFTER_HOURS, CrmSimulation
from streams.simulator.history import HISTORY_RATE, MIN_HISTORY_SECONDS, quarter_so_far
from streams.simulator.run import history_sent_line, parse_history_sent


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.mark.parametrize(
    ("zone", "fiscal_start", "now", "start"),
    [
        # Calendar quarters in UTC: 5 December is in the quarter from 1 October.
        ("UTC", 1, "2026-12-05T06:00:00+00:00", "2026-10-01T00:00:00+00:00"),
        # A fiscal year from April, New York: 5 December is in fiscal Q3 (October-December), which
        # began at midnight New York time (EDT, UTC-4) before the clocks went back on 1 November.
        ("America/New_York", 4, "2026-12-05T06:00:00+00:00", "2026-10-01T04:00:00+00:00"),
        # February in a fiscal year from April: Q4 began on 1 January (EST, UTC-5).
        ("America/New_York", 4, "2027-02-20T12:00:00+00:00", "2027-01-01T05:00:00+00:00"),
        # A quarter's first morning: the history still goes back two days (yesterday's wins).
        ("UTC", 1, "2027-01-01T09:00:00+00:00", "2026-12-30T09:00:00+00:00"),
    ],
)
def test_the_history_is_the_fiscal_quarter_so_far_and_at_least_two_days(
    zone: str, fiscal_start: int, now: str, start: str
) -> None:
    history = quarter_so_far(Calendar(zone, fiscal_start), epoch(now))
    assert history.start == epoch(start)
    assert history.rate == HISTORY_RATE
    assert epoch(now) - history.start >= MIN_HISTORY_SECONDS


def test_the_history_line_round_trips() -> None:
    start = epoch("2026-10-01T00:00:00+00:00")
    assert parse_history_sent(history_sent_line(61_464, start)) == (61_464, datetime(2026, 10, 1, tzinfo=UTC))
    assert parse_history_sent("simulator: anything else") is None


def deal_lifecycles(messages: list) -> tuple[dict[str, list[dict]], int]:
    """Each deal's well-formed events in order, and how many messages were not well formed."""
    deals: dict[str, list[dict]] = defaultdict(list)
    broken = 0
    for message in messages:
        try:
            value = orjson.loads(message.value)
        except orjson.JSONDecodeError:
            broken += 1
            continue
        if not isinstance(value.get("deal_id"), str) or "rep_id" not in value or not value["occurred_at"].endswith("Z"):
            broken += 1
            continue
        deals[value["deal_id"]].append(value)
    return deals, broken


def test_every_lead_is_answered_or_given_up_even_with_broken_copies() -> None:
    """A week of the floor: broken messages are extra copies, so no lead waits for ever because its
    only first touch was broken; a lead nobody answers is lost for no response 2 to 8 hours on."""
    settings = load_settings()
    start = epoch("2026-11-02T00:00:00+00:00")
    end = start + 7 * 86400
    simulation = CrmSimulation(settings, seed=11, rate=0.2)
    messages = list(simulation.backfill(start, end, step=60))
    deals, broken = deal_lifecycles(messages)
    assert broken > 0  # the dead-letter path is exercised
    unanswered_lost = 0
    for deal, events in deals.items():
        created = epoch(events[0]["occurred_at"].replace("Z", "+00:00"))
        if end - created < 9 * 3600:
            continue  # still in play at the end of the week
        stages = [event["stage"] for event in events if "stage" in event]
        # A first response: an outbound call or a sent email (SPEC §2).
        touched = any(event.get("direction") == "outbound" or event.get("action") == "sent" for event in events)
        assert touched or stages[-1] in ("won", "lost"), deal  # else it would wait for an answer for ever
        if not touched:
            lost_at = epoch(events[-1]["occurred_at"].replace("Z", "+00:00"))
            hours = (lost_at - created) / 3600
            assert GIVEN_UP_AFTER_HOURS[0] <= hours <= GIVEN_UP_AFTER_HOURS[1], deal
            assert events[-1]["lost_reason"] == "no_response"
            unanswered_lost += 1
    assert unanswered_lost > 0


def test_going_live_changes_the_pace_from_that_moment() -> None:
    """The history at a real floor's pace, then the live rate: the first live lead arrives within
    seconds at 20 events/s, not after the history's mean gap of about twelve minutes."""
    settings = load_settings()
    now = epoch("2026-12-05T06:00:00+00:00")
    simulation = CrmSimulation(settings, seed=5, rate=HISTORY_RATE)
    list(simulation.backfill(now - 86400, now, step=60))
    simulation.change_rate(20, now)
    created = [
        orjson.loads(message.value)
        for message in simulation.until(now + 60)
        if message.topic == settings.topics.deal_stages and b'"stage":"new"' in message.value
    ]
    new_leads = [event for event in created if epoch(event["occurred_at"].replace("Z", "+00:00")) > now]
    assert 60 * 20 / 9 * 0.5 < len(new_leads) < 60 * 20 / 9 * 1.5  # about 133 leads in the minute
