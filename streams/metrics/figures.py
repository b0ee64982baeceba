"""Catalog figures computed from the aggregates: the one code path behind /metrics and the API.

:func:`project` sums the cells of a metric's sources onto the labels asked for (all of the
metric's labels for /metrics; fewer, for one rep or team, in the API), in one scope: the
lifetime, live state, or one calendar period (the current one for /metrics, any kept one for
the API). The figures that are not cell projections (leads awaiting now, profile targets and
quotas) are computed here too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from streams.fold.contributions import LIFETIME, LIVE, Family, Scope
from streams.fold.facts import MICRO
from streams.fold.profiles import Profile, ProfileLookup, team_at
from streams.metrics.catalog import Kind, MetricSpec
from streams.metrics.labels import SourceLabels, TopReasons
from streams.periods import Calendar, Period, PeriodKind
from streams.rollups import Labels, Rollups

Accumulator = list[int]  # scalar: [count or micro-total]; histogram: [bucket counts..., micro-sum]


@dataclass(frozen=True)
class Resolve:
    """Label mapping for one read: closed label sets, teams now, today's date."""

    source: SourceLabels
    reason: Callable[[str | None], str]
    team_now: Callable[[str, str | None], str]
    today: str  # YYYY-MM-DD in the reporting timezone
    topic_name: Callable[[str], str]


CellReader = Callable[[Family], Iterable[tuple[Labels, int, int]]]


def project(
    spec: MetricSpec,
    cells: CellReader,
    resolve: Resolve,
    keep: tuple[str, ...],
    where: Mapping[str, str] | None = None,
) -> dict[tuple[str, ...], Accumulator]:
    """The spec's values in one scope, summed onto the ``keep`` labels, over cells whose labels
    match ``where`` (a source without a ``where`` label contributes nothing)."""
    histogram = spec.kind is Kind.HISTOGRAM
    slots = len(spec.buckets) + 1
    out: dict[tuple[str, ...], Accumulator] = {}
    for source in spec.sources:
        names = source.names
        if any(label not in names for label in (where or {})):
            continue
        keep_at = [names.index(label) for label in keep]
        where_at = [(names.index(label), value) for label, value in (where or {}).items()]
        for raw, count, total in cells(source.family):
            wide = source.wide(raw, resolve)
            if wide is None or (where_at and any(wide[index] != value for index, value in where_at)):
                continue  # (a /metrics read has no ``where``: no generator per cell for it)
            key = tuple(wide[index] for index in keep_at)
            acc = out.get(key)
            if histogram:
                if acc is None:
                    acc = out[key] = [0] * (slots + 1)
                acc[int(wide[-1])] += count
                acc[slots] += total
            elif acc is None:
                out[key] = [total if source.total else count]
            else:
                acc[0] += total if source.total else count
    return out


def scalar(spec: MetricSpec, acc: Accumulator) -> float:
    """An accumulated scalar in the metric's unit (money and seconds are summed in micro-units)."""
    return acc[0] / MICRO if any(source.total for source in spec.sources) else acc[0]


def cumulative_buckets(spec: MetricSpec, acc: Accumulator) -> tuple[list[tuple[str, int]], float]:
    """Prometheus ``(le, cumulative count)`` pairs and the sum in seconds."""
    running, buckets = 0, []
    for bound, count in zip([*map(str, spec.buckets), "+Inf"], acc[:-1], strict=True):
        running += count
        buckets.append((bound, running))
    return buckets, acc[-1] / MICRO


def scopes_of(spec: MetricSpec, calendar: Calendar, now: float) -> list[tuple[Scope, str | None]]:
    """The aggregate scopes a metric reads at ``now``, each with its ``period`` label value."""
    if spec.scope == "lifetime":
        return [(LIFETIME, None)]
    if spec.scope == "live":
        return [(LIVE, None)]
    current = [period for period in calendar.periods_of(now) if period[0] in spec.periods]
    if spec.scope == "previous_period":
        return [(calendar.previous(period), period[0].value) for period in current]
    return [(period, period[0].value) for period in current]


class FigureReader:
    """Reads the aggregates of a set of partitions for one moment ``now``."""

    def __init__(
        self,
        rollups: Rollups,
        profiles: ProfileLookup,
        partitions: Iterable[int],
        now: float,
        source_labels: SourceLabels,
        topic_names: Mapping[str, str],
    ) -> None:
        self.rollups = rollups
        self.profiles = profiles
        self.partitions = sorted(partitions)
        self.now = now
        self.calendar = rollups.calendar
        self.resolve = Resolve(
            source=source_labels,
            reason=TopReasons(self._lost_reason_counts()),
            team_now=lambda rep, team: team_at(profiles, rep, team, now),
            today=self.calendar.period_of(PeriodKind.DAY, now)[1],
            topic_name=lambda topic: topic_names.get(topic, topic),
        )

    def cells(self, scope: Scope) -> CellReader:
        return lambda family: self.rollups.cells(scope, family, self.partitions)

    def _lost_reason_counts(self) -> Counter[str | None]:
        """Lost deals by reason over every kept month: the ranking behind the reason labels."""
        counts: Counter[str | None] = Counter()
        for scope in self.rollups.scopes(self.partitions):
            if scope[0] == PeriodKind.MONTH:
                for labels, count, _ in self.rollups.cells(scope, Family.LOST, self.partitions):
                    counts[labels[2]] += count
        return counts

    def rows(
        self, spec: MetricSpec, where: Mapping[str, str] | None = None, keep: tuple[str, ...] | None = None
    ) -> Iterator[tuple[str | None, dict[tuple[str, ...], Accumulator]]]:
        """``(period label, values)`` per scope the spec reads now."""
        for scope, period in scopes_of(spec, self.calendar, self.now):
            yield (
                period,
                project(spec, self.cells(scope), self.resolve, spec.cell_labels if keep is None else keep, where),
            )

    def period_rows(
        self, spec: MetricSpec, period: Period, where: Mapping[str, str] | None = None, keep: tuple[str, ...] = ()
    ) -> dict[tuple[str, ...], Accumulator]:
        """A period metric's values in any kept period (the previous one for previous-period metrics)."""
        scope = self.calendar.previous(period) if spec.scope == "previous_period" else period
        return project(spec, self.cells(scope), self.resolve, keep, where)

    def awaiting(self) -> dict[tuple[str, str], list]:
        """(rep, team now) -> [leads awaiting, oldest age in seconds, past their SLA now]."""
        waiting: dict[tuple[str, str], list] = {}
        for _deal, lead in self.rollups.awaiting(self.partitions):
            key = (lead.rep, self.resolve.team_now(lead.rep, lead.team))
            cell = waiting.get(key)
            if cell is None:
                cell = waiting[key] = [0, 0.0, 0]
            cell[0] += 1
            cell[1] = max(cell[1], self.now - lead.created_at)
            cell[2] += self.now > lead.breach_at
        return waiting


def activity_targets(profile: Profile) -> Iterator[tuple[str, str, float]]:
    """(activity, period, target) as the profile sets them (per day, or per week for meetings)."""
    if profile.calls_per_day is not None:
        yield "calls", PeriodKind.DAY.value, profile.calls_per_day
    if profile.emails_per_day is not None:
        yield "emails_sent", PeriodKind.DAY.value, profile.emails_per_day
    if profile.meetings_per_week is not None:
        yield "meetings_held", PeriodKind.WEEK.value, profile.meetings_per_week
