"""Calendar periods in the reporting timezone (SPEC §2): hour, day, ISO week, month.

A period is named by its kind and the local label of its start, which is also how the HTTP API
asks for it: ``("day", "2024-03-05")``, ``("week", "2024-03-04")`` (the Monday),
``("month", "2024-03")``, ``("hour", "2024-03-05T14:00+01:00")``. Hours carry their UTC offset
so the repeated hour of a DST fall-back stays two periods.

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


Period = tuple[PeriodKind, str]

# Every UTC offset in use is a whole number of quarter hours, so all instants inside one
# UTC quarter hour share their local hour, day, week and month.
_QUARTER_HOUR_SECONDS = 900
_CACHE_LIMIT = 50_000


class Calendar:
    """Maps an instant (epoch seconds) to the four periods that contain it."""

    def __init__(self, timezone: str) -> None:
        self.timezone = timezone
        self.zone = ZoneInfo(timezone)
        self._cache: dict[int, tuple[Period, ...]] = {}

    def periods_of(self, epoch_seconds: float) -> tuple[Period, ...]:
        quarter = int(epoch_seconds // _QUARTER_HOUR_SECONDS)
        periods = self._cache.get(quarter)
        if periods is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            periods = self._compute(quarter * _QUARTER_HOUR_SECONDS)
            self._cache[quarter] = periods
        return periods

    def period_of(self, kind: PeriodKind, epoch_seconds: float) -> Period:
        return self.periods_of(epoch_seconds)[_KIND_INDEX[kind]]

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
        start = date.fromisoformat(label)
        return datetime(start.year, start.month, start.day, tzinfo=self.zone)

    def oldest_kept_start(self, kind: PeriodKind, now: float, kept: int) -> float:
        """Start (epoch seconds) of the oldest period kept when the current one and the
        ``kept`` before it are kept."""
        start = self.start_of(self.period_of(kind, now))
        if kind is PeriodKind.HOUR:
            return start.timestamp() - kept * 3600
        if kind is PeriodKind.MONTH:
            months = start.year * 12 + start.month - 1 - kept
            return datetime(months // 12, months % 12 + 1, 1, tzinfo=self.zone).timestamp()
        days = kept * (7 if kind is PeriodKind.WEEK else 1)
        day = start.date() - timedelta(days=days)
        return datetime(day.year, day.month, day.day, tzinfo=self.zone).timestamp()


_KIND_INDEX = {kind: index for index, kind in enumerate(PeriodKind)}
