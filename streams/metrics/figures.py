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

from streams.config import DEFAULT_STAGE_PROBABILITIES
from streams.fold.contributions import LIFETIME, LIVE, Family, Scope
from streams.fold.facts import MICRO
from streams.fold.periods import Calendar, Period, PeriodKind
from streams.fold.profiles import Profile, ProfileLookup, team_at
from streams.metrics.labels import LabelBudgets, SourceLabels, TopReasons
from streams.metrics.spec import CellSource, Kind, Labelling, MetricSpec, Resolve
from streams.state.rollups import Cells, Labels, Rollups

Accumulator = list[int]  # scalar: [count or micro-total]; histogram: [bucket counts..., micro-sum]


CellReader = Callable[[Family], Iterable[Cells]]  # a family's cells in one scope, a dict per partition
Hit = tuple[tuple[str, ...], int] | None  # (kept label values, histogram slot), or None: not counted


class Route(dict[Labels, Hit]):
    """Where a source's cells go for one read: raw labels -> kept label values and histogram slot.

    Each distinct raw label set is widened once per read (a /metrics scrape or an API query),
    however many periods and partitions repeat it: most of a scrape is these lookups.
    """

    def __init__(self, source: CellSource, resolve: Labelling, keep: tuple[str, ...], where: Mapping[str, str]) -> None:
        super().__init__()
        self.source = source
        self.resolve = resolve
        self.keep_at = [source.names.index(label) for label in keep]
        self.where_at = [(source.names.index(label), value) for label, value in where.items()]
        self.capped = resolve.capped(source.names)
        self.stage_at = source.names.index("stage") if source.weighted else -1
        self.weights: dict[Labels, float] = {}  # weighted sources: raw labels -> the stage's probability

    def __missing__(self, raw: Labels) -> Hit:
        wide = self.source.wide(raw, self.resolve)  # type: ignore[arg-type]
        if wide is not None and self.capped:
            values = list(wide)
            for index, budget in self.capped:
                values[index] = budget(values[index])
            wide = tuple(values)
        hit: Hit = None
        if wide is not None and all(wide[index] == value for index, value in self.where_at):
            hit = (tuple(wide[index] for index in self.keep_at), int(wide[-1]) if self.source.bucketed else 0)
            if self.stage_at >= 0:
                self.weights[raw] = self.resolve.probability(wide[self.stage_at])
        self[raw] = hit
        return hit


class Routes(dict[tuple[CellSource, tuple[str, ...], tuple[tuple[str, str], ...]], Route]):
    """Routes by (source, kept labels, filter): for one read, or for as long as the worker runs
    when given only the :class:`Labelling` (volatile sources then fail loudly)."""

    def __init__(self, resolve: Labelling) -> None:
        super().__init__()
        self.resolve = resolve

    def of(self, source: CellSource, keep: tuple[str, ...], where: Mapping[str, str]) -> Route:
        key = (source, keep, tuple(sorted(where.items())))
        route = self.get(key)
        if route is None:
            route = self[key] = Route(source, self.resolve, keep, where)
        return route


def project(
    spec: MetricSpec,
    cells: CellReader,
    routes: Routes,
    keep: tuple[str, ...],
    where: Mapping[str, str] | None = None,
) -> dict[tuple[str, ...], Accumulator]:
    """The spec's values in one scope, summed onto the ``keep`` labels, over cells whose labels
    match ``where`` (a source without a ``where`` label contributes nothing)."""
    where = where or {}
    out: dict[tuple[str, ...], Accumulator] = {}
    for source in spec.sources:
        if any(label not in source.names for label in where):
            continue
        route = routes.of(source, keep, where)
        for partition in cells(source.family):
            add_cells(out, spec, source, route, partition)
    return out


def add_cells(
    out: dict[tuple[str, ...], Accumulator],
    spec: MetricSpec,
    source: CellSource,
    route: Route,
    cells: Cells,
    fed: dict[tuple[str, ...], int] | None = None,
) -> None:
    """Adds a source's cells to the accumulators their route names (``fed`` counts the cells
    feeding each: what the series view needs to know when a series goes)."""
    histogram, slots, value_at = spec.kind is Kind.HISTOGRAM, len(spec.buckets) + 1, 1 if source.total else 0
    get = out.get
    if source.weighted:
        _add_weighted(out, route, cells, value_at)
        return
    for raw, cell in cells.items():
        hit = route[raw]
        if hit is None:
            continue
        key, slot = hit
        acc = get(key)
        if acc is None:
            acc = out[key] = [0] * (slots + 1) if histogram else [0]
        if histogram:
            acc[slot] += cell[0]
            acc[slots] += cell[1]
        else:
            acc[0] += cell[value_at]
        if fed is not None:
            fed[key] = fed.get(key, 0) + 1


def _add_weighted(out: dict[tuple[str, ...], Accumulator], route: Route, cells: Cells, value_at: int) -> None:
    """A weighted source's cells (scalars, never followed by the series view: they are volatile)."""
    for raw, cell in cells.items():
        hit = route[raw]
        if hit is not None:
            acc = out.setdefault(hit[0], [0])
            acc[0] += round(cell[value_at] * route.weights[raw])


def with_period(spec: MetricSpec, labels: tuple[str, ...], period: str | None) -> tuple[str, ...]:
    """A projection's labels with the scope's ``period`` label put in its place among the spec's."""
    if period is None:
        return labels
    at = spec.labels.index("period")
    return (*labels[:at], period, *labels[at:])


def exported(spec: MetricSpec, acc: Accumulator) -> int | float | tuple[list[tuple[str, int]], float]:
    """An accumulator as /metrics shows it: a scalar, or a histogram's buckets and sum."""
    return cumulative_buckets(spec, acc) if spec.kind is Kind.HISTOGRAM else scalar(spec, acc)


def scalar(spec: MetricSpec, acc: Accumulator) -> int | float:
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
    current = [calendar.period_of(kind, now) for kind in spec.periods]
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
        budgets: LabelBudgets | None = None,
        stage_probabilities: Mapping[str, float] = DEFAULT_STAGE_PROBABILITIES,
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
            budgets=budgets,
            stage_probabilities=stage_probabilities,
        )
        self.routes = Routes(self.resolve)

    def cells(self, scope: Scope) -> CellReader:
        return lambda family: self.rollups.cell_maps(scope, family, self.partitions)

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
                project(spec, self.cells(scope), self.routes, spec.cell_labels if keep is None else keep, where),
            )

    def period_rows(
        self, spec: MetricSpec, period: Period, where: Mapping[str, str] | None = None, keep: tuple[str, ...] = ()
    ) -> dict[tuple[str, ...], Accumulator]:
        """A period metric's values in any kept period (the previous one for previous-period metrics)."""
        scope = self.calendar.previous(period) if spec.scope == "previous_period" else period
        return project(spec, self.cells(scope), self.routes, keep, where)

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
