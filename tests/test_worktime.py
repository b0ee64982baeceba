"""Business time across weekends and DST changes, against hand-computed figures."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from schemas.events import DEFAULT_WORKING_HOURS, WEEKDAYS
from streams.fold.worktime import business_deadline, business_seconds, week_hours, working_at

NINE_TO_FIVE = week_hours(DEFAULT_WORKING_HOURS, WEEKDAYS)


def at(text: str, zone: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def test_a_weekend_counts_nothing() -> None:
    # Friday 16:00 to Monday 10:00 in Berlin: Friday 16-17 and Monday 9-10.
    start, end = at("2024-03-08T16:00", "Europe/Berlin"), at("2024-03-11T10:00", "Europe/Berlin")
    assert business_seconds(start, end, "Europe/Berlin", NINE_TO_FIVE) == 2 * 3600


def test_outside_hours_on_a_working_day_counts_nothing() -> None:
    start, end = at("2024-03-05T18:00", "Europe/Berlin"), at("2024-03-05T23:00", "Europe/Berlin")
    assert business_seconds(start, end, "Europe/Berlin", NINE_TO_FIVE) == 0


def test_the_working_hours_are_local_to_the_rep() -> None:
    # 15:00-18:00 UTC on a Tuesday is 10:00-13:00 in New York (EST), all inside; 16:00-19:00 in
    # Berlin (CET), one hour inside.
    start, end = at("2024-03-05T15:00", "UTC"), at("2024-03-05T18:00", "UTC")
    assert business_seconds(start, end, "America/New_York", NINE_TO_FIVE) == 3 * 3600
    assert business_seconds(start, end, "Europe/Berlin", NINE_TO_FIVE) == 3600


ALL_SUNDAY = (None,) * 6 + ((0, 24 * 60),)
EARLY_SUNDAY = (None,) * 6 + ((60, 4 * 60),)  # 01:00-04:00


@pytest.mark.parametrize(
    ("day", "hours", "expected"),
    [
        ("2024-03-10", ALL_SUNDAY, 23 * 3600),  # spring forward: the local day has 23 hours
        ("2024-03-10", EARLY_SUNDAY, 2 * 3600),  # 01:00-04:00 skips 02:00-03:00
        ("2024-11-03", ALL_SUNDAY, 25 * 3600),  # fall back: 25 hours
        ("2024-11-03", EARLY_SUNDAY, 4 * 3600),  # 01:00-02:00 happens twice
        ("2024-03-17", EARLY_SUNDAY, 3 * 3600),  # an ordinary Sunday
    ],
)
def test_a_dst_change_moves_the_instants_not_the_local_hours(day: str, hours: tuple, expected: int) -> None:
    zone = "America/New_York"
    midnight = datetime.fromisoformat(f"{day}T00:00")
    next_midnight = datetime.fromordinal(midnight.toordinal() + 1)
    start, stop = at(midnight.isoformat(), zone), at(next_midnight.isoformat(), zone)
    assert business_seconds(start, stop, zone, hours) == expected


def test_deadline_skips_the_weekend() -> None:
    friday = at("2024-03-08T16:30", "Europe/Berlin")
    assert business_deadline(friday, 3600, "Europe/Berlin", NINE_TO_FIVE) == at("2024-03-11T09:30", "Europe/Berlin")
    assert business_deadline(friday, 1800, "Europe/Berlin", NINE_TO_FIVE) == at("2024-03-08T17:00", "Europe/Berlin")


def test_deadline_and_seconds_agree() -> None:
    start = at("2024-03-07T11:12", "America/New_York")
    for seconds in (1, 600, 8 * 3600, 3 * 24 * 3600):
        deadline = business_deadline(start, seconds, "America/New_York", NINE_TO_FIVE)
        assert business_seconds(start, deadline, "America/New_York", NINE_TO_FIVE) == pytest.approx(seconds)


def test_no_working_hours_never_reach_a_deadline() -> None:
    nothing = tuple(None for _ in range(7))
    assert business_deadline(0.0, 60, "UTC", nothing) == float("inf")
    assert business_seconds(0.0, 86400 * 10, "UTC", nothing) == 0


@pytest.mark.parametrize(
    ("local", "zone", "working"),
    [
        ("2024-03-05T09:00", "Europe/Berlin", True),  # a Tuesday, the window's first instant
        ("2024-03-05T16:59:59", "Europe/Berlin", True),
        ("2024-03-05T17:00", "Europe/Berlin", False),  # the window's end is outside
        ("2024-03-05T08:59", "Europe/Berlin", False),
        ("2024-03-09T12:00", "Europe/Berlin", False),  # a Saturday
        ("2024-03-31T09:30", "Europe/Berlin", False),  # a Sunday, the DST day
        ("2024-04-01T09:30", "Europe/Berlin", True),  # 07:30 UTC after the change, 08:30 before it
        ("2024-03-05T09:30", "America/New_York", True),  # 14:30 UTC: after hours in Berlin, working here
    ],
)
def test_working_now(local: str, zone: str, working: bool) -> None:
    assert working_at(at(local, zone), zone, NINE_TO_FIVE) is working
