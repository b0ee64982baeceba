"""Business time: the part of an interval inside a rep's working hours, in the rep's timezone.

Working hours are wall-clock windows per weekday (``09:00``-``17:00`` local), so a window is
placed on each local date and converted to an instant with the zone's rules of that date: a
DST change moves the instants, never the local hours. Pure: no Faust, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

# Per weekday (0 = Monday): (start, end) in minutes after local midnight, or None (day off).
WeekHours = tuple[tuple[int, int] | None, ...]

_DAY = timedelta(days=1)
_MAX_DAYS = 366 * 5  # a deadline further away than this is treated as never


def minutes(clock: str) -> int:
    """``"HH:MM"`` (``"24:00"`` allowed) as minutes after midnight."""
    hours, mins = clock.split(":")
    return int(hours) * 60 + int(mins)


def week_hours(working_hours: Mapping[str, Sequence[str]], weekdays: Sequence[str]) -> WeekHours:
    """Working hours keyed by weekday name as the compact per-weekday form."""
    return tuple(
        (minutes(working_hours[day][0]), minutes(working_hours[day][1])) if day in working_hours else None
        for day in weekdays
    )


@lru_cache(maxsize=65536)
def _window(zone_name: str, day: date, start_minute: int, end_minute: int) -> tuple[float, float]:
    zone = ZoneInfo(zone_name)

    def instant(minute: int) -> float:
        moment = datetime.combine(day, time(0), tzinfo=zone) + timedelta(minutes=minute)
        # Adding a timedelta to an aware datetime keeps wall-clock arithmetic: 09:00 stays 09:00 local.
        return moment.timestamp()

    return instant(start_minute), instant(end_minute)


def _windows(zone_name: str, hours: WeekHours, start: float) -> Iterator[tuple[float, float]]:
    """Working windows (epoch seconds) in local-date order, from the local date of ``start``."""
    day = datetime.fromtimestamp(start, ZoneInfo(zone_name)).date()
    for _ in range(_MAX_DAYS):
        slot = hours[day.weekday()]
        if slot is not None:
            yield _window(zone_name, day, slot[0], slot[1])
        day += _DAY


def working_at(at: float, zone_name: str, hours: WeekHours) -> bool:
    """Whether ``at`` falls inside the working hours (windows never cross local midnight)."""
    day = datetime.fromtimestamp(at, ZoneInfo(zone_name)).date()
    slot = hours[day.weekday()]
    if slot is None:
        return False
    start, end = _window(zone_name, day, slot[0], slot[1])
    return start <= at < end


def business_seconds(start: float, end: float, zone_name: str, hours: WeekHours) -> float:
    """Seconds of ``[start, end]`` inside the working hours."""
    if end <= start or not any(hours):
        return 0.0
    total = 0.0
    for window_start, window_end in _windows(zone_name, hours, start):
        if window_start >= end:
            break
        total += max(0.0, min(end, window_end) - max(start, window_start))
    return total


def business_deadline(start: float, seconds: float, zone_name: str, hours: WeekHours) -> float:
    """The instant at which ``seconds`` of business time have passed since ``start``
    (``inf`` when the working hours never add up to that)."""
    if seconds <= 0:
        return start
    remaining = seconds
    for window_start, window_end in _windows(zone_name, hours, start):
        begin = max(start, window_start)
        if window_end <= begin:
            continue
        if window_end - begin >= remaining:
            return begin + remaining
        remaining -= window_end - begin
    return float("inf")
