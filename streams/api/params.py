"""Query parameters of the API, parsed into periods and limits, or a 400 that says what is wrong.

``period`` is ``hour``, ``day``, ``week``, ``month``, ``quarter`` or ``year`` (default ``day``).
``start`` names the period, in the reporting timezone: a date (``2024-03-05``) inside it for a day,
week or month (any date in a week names that week), a month (``2024-03``) for months, a date and
hour (``2024-03-05T14`` or ``2024-03-05T14:00``, optionally with an offset) for hours, and the
first day of a fiscal quarter or year for those (``2024-04-01``; another date is a 400: a quarter
named by a day inside it would hide a misunderstood fiscal calendar). Default: the current period.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime

from streams.fold.periods import DERIVED, Calendar, Period, PeriodKind

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC).timestamp()
LATEST = datetime(9998, 12, 31, tzinfo=UTC).timestamp()
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_MONTH = re.compile(r"[0-9]{4}-[0-9]{2}")
_HOUR = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2})(:00)?([+-][0-9]{2}:[0-9]{2}|Z)?")


class BadParameter(ValueError):
    """A query parameter is invalid; the message names it (an HTTP 400)."""


def period_of(query: Mapping[str, str], calendar: Calendar, now: float) -> Period:
    kind_text = query.get("period", PeriodKind.DAY.value)
    try:
        kind = PeriodKind(kind_text)
    except ValueError:
        kinds = ", ".join(kind.value for kind in PeriodKind)
        raise BadParameter(f"period must be one of {kinds} (got {kind_text[:40]!r})") from None
    start = query.get("start")
    if start is None:
        return calendar.period_of(kind, now)
    instant = _instant(kind, start, calendar)
    if not EARLIEST <= instant <= LATEST:  # the calendar's arithmetic stays inside datetime's years
        raise BadParameter(f"start must lie between the years 1900 and 9998 (got {start[:40]!r})")
    period = calendar.period_of(kind, instant)
    if kind in DERIVED and period[1] != start:
        month = calendar.fiscal_year_start_month
        raise BadParameter(
            f"start for period={kind.value} is the first day of a fiscal {kind.value} (the fiscal year starts on"
            f" the 1st of month {month}): {period[1]} is the one holding {start[:40]!r}"
        )
    return period


def _instant(kind: PeriodKind, text: str, calendar: Calendar) -> float:
    """An instant inside the period ``start`` names."""
    shown = repr(text[:40])
    try:
        if kind is PeriodKind.HOUR:
            match = _HOUR.fullmatch(text)
            if match is None:
                raise BadParameter(f"start for an hour is YYYY-MM-DDTHH, e.g. 2024-03-05T14 (got {shown})")
            day, hour, _, offset = match.groups()
            moment = datetime.fromisoformat(f"{day}T{hour}:00{(offset or '').replace('Z', '+00:00')}")
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=calendar.zone)
            return moment.timestamp() + 1
        if kind is PeriodKind.MONTH and _MONTH.fullmatch(text):
            text += "-01"
        day = date.fromisoformat(text)
        if len(text) != 10:
            raise ValueError("not YYYY-MM-DD")
        return datetime(day.year, day.month, day.day, 12, tzinfo=calendar.zone).timestamp()
    except BadParameter:
        raise
    except (ValueError, OverflowError):
        raise BadParameter(f"start is not a date (YYYY-MM-DD) for period={kind.value} (got {shown})") from None


def limit_of(query: Mapping[str, str]) -> int:
    text = query.get("limit")
    if text is None:
        return DEFAULT_LIMIT
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise BadParameter(f"limit must be a whole number from 1 to {MAX_LIMIT} (got {text[:40]!r})")
    return int(text)
