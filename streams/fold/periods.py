"""Calendar periods in the reporting timezone (SPEC §2): hour, day, ISO week, month, and the
fiscal quarter and year, which start on the first day of a configurable month.

A period is named by its kind and the local label of its start, which is also how the HTTP API
asks for it: ``("day", "2024-03-05")``, ``("week", "2024-03-04")`` (the Monday),
``("month", "2024-03")``, ``("hour", "2024-03-05T14:00+01:00")``, ``("quarter", "2024-04-01")``,
``("year", "2024-04-01")`` (their first day). Hours carry their UTC offset so the repeated hour of
a DST fall-back stays two periods.

The aggregates hold the ``STORED`` kinds only. A quarter or a year is the sum of its months (every
aggregate is a count, a sum or histogram buckets, and both start on the first of a month), so they
cost nothing per event: :meth:`Calendar.months_of` names the months to read.

Faust's windowed tables are not used: they are epoch-aligned (no calendar months, no local
days in a non-UTC zone), they never expire after recovery with RocksDB (faust-streaming #385)
and have no grace period for late events (#118).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class PeriodKind(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"

    # Enum's own __hash__ is a Python function (the name's hash); these are hashed in every
    # aggregate key, millions of times a minute. A member equals its value, so it hashes as it.
    __hash__ = str.__hash__


Period = tuple[PeriodKind, str]
STORED = (PeriodKind.HOUR, PeriodKind.DAY, PeriodKind.WEEK, PeriodKind.MONTH)  # what the aggregates hold
DERIVED = {PeriodKind.QUARTER: 3, PeriodKind.YEAR: 12}  # months in each

# Every UTC offset in use is a whole number of quarter hours, so all instants inside one
# UTC quarter hour share their local hour, day, week and month.
_QUARTER_HOUR_SECONDS = 900
_CACHE_LIMIT = 50_000


def quarter_hour(epoch_seconds: float) -> int:
    """The UTC quarter hour holding an instant: every instant in it lies in the same periods."""
    return int(epoch_seconds // _QUARTER_HOUR_SECONDS)


class Calendar:
    """Maps an instant (epoch seconds) to the periods that contain it."""

    def __init__(self, timezone: str, fiscal_year_start_month: int = 1) -> None:
        if not 1 <= fiscal_year_start_month <= 12:
            raise ValueError(f"a fiscal year starts in month 1 to 12, not {fiscal_year_start_month}")
        self.timezone = timezone
        self.zone = ZoneInfo(timezone)
        self.fiscal_year_start_month = fiscal_year_start_month
        self._cache: dict[int, tuple[Period, ...]] = {}
        self._next_days: dict[str, float] = {}  # day -> when the day after it starts

    def periods_of(self, epoch_seconds: float) -> tuple[Period, ...]:
        """The ``STORED`` periods containing the instant (what its contributions are kept under)."""
        return self.periods_of_quarter_hour(quarter_hour(epoch_seconds))

    def periods_of_quarter_hour(self, quarter: int) -> tuple[Period, ...]:
        """The ``STORED`` periods containing a UTC quarter hour (:func:`quarter_hour`)."""
        periods = self._cache.get(quarter)
        if periods is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            periods = self._compute(quarter * _QUARTER_HOUR_SECONDS)
            self._cache[quarter] = periods
        return periods

    def start_of_next_day(self, day: str) -> float:
        """When the day after ``day`` (YYYY-MM-DD) starts, in epoch seconds (``inf`` after the last
        day an instant can hold, ``-inf`` before the first). Cached: deals share their dates."""
        start = self._next_days.get(day)
        if start is None:
            if len(self._next_days) >= _CACHE_LIMIT:
                self._next_days.clear()
            start = self._next_days[day] = self._start_of_next_day(day)
        return start

    def _start_of_next_day(self, day: str) -> float:
        given = date.fromisoformat(day)
        try:
            following = given + timedelta(days=1)
            return self.start_of((PeriodKind.DAY, following.isoformat())).timestamp()
        except (OverflowError, ValueError):
            return float("inf") if given.year > 5000 else float("-inf")

    def period_of(self, kind: PeriodKind, epoch_seconds: float) -> Period:
        month = self.periods_of(epoch_seconds)[_KIND_INDEX[PeriodKind.MONTH]]
        if kind in DERIVED:
            return self._containing(kind, month)
        return self.periods_of(epoch_seconds)[_KIND_INDEX[kind]]

    def _containing(self, kind: PeriodKind, month: Period) -> Period:
        """The fiscal quarter or year that holds ``month``."""
        year, number = (int(part) for part in month[1].split("-"))
        since_fiscal_start = (number - self.fiscal_year_start_month) % 12
        back = since_fiscal_start % 3 if kind is PeriodKind.QUARTER else since_fiscal_start
        first = year * 12 + number - 1 - back
        return (kind, f"{first // 12:04d}-{first % 12 + 1:02d}-01")

    def months_of(self, period: Period) -> list[Period]:
        """The months a period is the sum of: itself for a month, its 3 or 12 for a quarter or year."""
        kind, label = period
        if kind not in DERIVED:
            return [period]
        year, month, _day = (int(part) for part in label.split("-"))
        first = year * 12 + month - 1
        return [(PeriodKind.MONTH, f"{m // 12:04d}-{m % 12 + 1:02d}") for m in range(first, first + DERIVED[kind])]

    def _compute(self, epoch_seconds: float) -> tuple[Period, ...]:
        local = datetime.fromtimestamp(epoch_seconds, self.zone)
        day = local.date()
        monday = day - timedelta(days=day.weekday())
        hour = local.replace(minute=0, second=0, microsecond=0).isoformat(timespec="minutes")
        return (
            (PeriodKind.HOUR, hour),
            (PeriodKind.DAY, day.isoformat()),
            (PeriodKind.WEEK, monday.isoformat()),
            (PeriodKind.MONTH, f"{day.year:04d}-{day.month:02d}"),
        )

    def previous(self, period: Period) -> Period:
        """The period of the same kind just before ``period``."""
        return self.period_of(period[0], self.start_of(period).timestamp() - 1)

    def start_of(self, period: Period) -> datetime:
        """The instant a period starts (aware, in the reporting timezone)."""
        kind, label = period
        if kind is PeriodKind.HOUR:
            return datetime.fromisoformat(label).astimezone(self.zone)
        if kind is PeriodKind.MONTH:
            year, month = (int(part) for part in label.split("-"))
            return datetime(year, month, 1, tzinfo=self.zone)
        start = date.fromisoformat(label)  # days, weeks, quarters and years: their first day
        return datetime(start.year, start.month, start.day, tzinfo=self.zone)

    def oldest_kept_start(self, kind: PeriodKind, now: float, kept: int) -> float:
        """Start (epoch seconds) of the oldest period kept when the current one and the
        ``kept`` before it are kept."""
        start = self.start_of(self.period_of(kind, now))
        if kind is PeriodKind.HOUR:
            return start.timestamp() - kept * 3600
        if kind is PeriodKind.MONTH or kind in DERIVED:
            months = start.year * 12 + start.month - 1 - kept * DERIVED.get(kind, 1)
            return datetime(months // 12, months % 12 + 1, 1, tzinfo=self.zone).timestamp()
        days = kept * (7 if kind is PeriodKind.WEEK else 1)
        day = start.date() - timedelta(days=days)
        return datetime(day.year, day.month, day.day, tzinfo=self.zone).timestamp()


_KIND_INDEX = {kind: index for index, kind in enumerate(STORED)}
