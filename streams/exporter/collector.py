"""The scrape-time collector: reads the aggregates of actively owned partitions.

Nothing is pushed into Prometheus objects per event. On each scrape the collector asks which
partitions this worker actively owns (never standbys) and builds the catalog's families from
their aggregates (:mod:`streams.metrics.figures`, the same code the API uses), so a
partition's series move with it when partitions move between workers. Across workers, series
are disjoint slices: boards and alerts ``sum by`` (or ``max by``). Figures from rep profiles
(quota, targets, a zero series per rep) come from the worker that owns the rep's ``crm.reps``
partition. Until the tables have recovered, only the health families are exported.

The cell metrics whose labels hold between scrapes are followed by :class:`SeriesView` (only the
series fed by changed cells are computed and rendered again); the others are projected in full.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.build import current as core_build
from streams.config import Settings, topic_names
from streams.exporter.series import SeriesView, Tables
from streams.exporter.text import Rows, TextWriter, header
from streams.fold.facts import MICRO
from streams.fold.profiles import profile_at, team_at
from streams.fold.worktime import working_at
from streams.gc_policy import collections_paused
from streams.metrics import catalog
from streams.metrics.figures import (
    FigureReader,
    activity_targets,
    exported,
    with_period,
)
from streams.metrics.labels import LabelBudget, LabelBudgets, SourceLabels
from streams.metrics.spec import Kind, Labelling, MetricSpec
from streams.state.codec import IntakeTally, intake_key
from streams.state.profiles import RepDirectory
from streams.state.rollups import Rollups
from streams.state.tables import DEALS as DEALS_TABLE
from streams.state.tables import REP_PROFILES as REP_PROFILES_TABLE


@dataclass(frozen=True)
class Ownership:
    """The partitions this worker actively owns, or ``ready=False`` while recovering."""

    ready: bool
    deal_partitions: frozenset[int] = frozenset()
    rep_partitions: frozenset[int] = frozenset()


def summed(rows: Rows) -> Rows:
    """Rows with equal labels added up (reps folded into ``other`` by the label budget)."""
    sums: dict[tuple[str, ...], float] = {}
    for labels, value in rows:
        sums[labels] = sums.get(labels, 0) + value
    return sorted(sums.items())


def _family(spec: MetricSpec, rows: Rows | Tables = ()) -> Metric:  # type: ignore[assignment]
    """A prometheus-client family of the rows (for registries; /metrics is written by :meth:`exposition`)."""
    if isinstance(rows, Tables):
        rows = rows.rows()
    if spec.kind is Kind.COUNTER:
        family: Metric = CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
    elif spec.kind is Kind.HISTOGRAM:
        family = HistogramMetricFamily(spec.name, spec.help, labels=spec.labels)
        for values, (buckets, total) in rows:  # type: ignore[misc]
            family.add_metric(list(values), buckets, sum_value=total)
        return family
    else:
        family = GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)
    for values, value in rows:
        family.add_metric(list(values), value)  # type: ignore[arg-type]
    return family


class LeadPulseCollector(Collector):
    def __init__(
        self,
        settings: Settings,
        *,
        rollups: Rollups,
        directory: RepDirectory,
        intake: Mapping[bytes, bytes],
        rep_intake: Mapping[bytes, bytes],
        ownership: Callable[[], Ownership],
        version: str,
        build: str | None = None,
        clock: Callable[[], float] = time.time,
        before_read: Callable[[], object] | None = None,
        dead_letters_waiting: Callable[[], int] = lambda: 0,
    ) -> None:
        self.settings = settings
        self.dead_letters_waiting = dead_letters_waiting
        self.rollups = rollups
        self.directory = directory
        self.intake = intake
        self.rep_intake = rep_intake
        self.ownership = ownership
        self.version = version
        self.build = build if build is not None else core_build().label  # streams/build.py
        self.clock = clock
        self.before_read = before_read
        self.source_labels = SourceLabels(settings.sla_by_source)
        self.topic_names = topic_names(settings)
        self.writer = TextWriter()
        self.budgets = LabelBudgets(
            rep=LabelBudget(settings.max_rep_labels),
            team=LabelBudget(settings.max_team_labels),
            currency=LabelBudget(settings.max_currency_labels),
        )
        labelling = Labelling(
            source=self.source_labels,
            topic_name=lambda topic: self.topic_names.get(topic, topic),
            budgets=self.budgets,
            stage_probabilities=settings.stage_probabilities,
        )
        self.view = SeriesView(rollups, labelling)
        self.followed = [spec for spec in catalog.CATALOG if spec.sources and not spec.volatile]

    def describe(self) -> list[Metric]:
        """Declared up front so registering never reads tables that may still be recovering."""
        return [_family(spec) for spec in catalog.CATALOG]

    def collect(self) -> Iterator[Metric]:
        for spec, rows in self.families():
            yield _family(spec, rows)

    def exposition(self) -> bytes:
        """The /metrics text, written without prometheus-client's per-sample objects. With the
        collector paused, as a batch folds: a scrape's rows and texts are freed by their reference
        counts, and the collections they set off scanned the aggregates (10-25% of a scrape)."""
        out: list[str] = []
        with collections_paused():
            for spec, rows in self.families():
                out.append(header(spec))
                if isinstance(rows, Tables):
                    rows.render(out)
                else:
                    self.writer.rows(spec, rows, out)
            return self.writer.finish(out)

    def families(self) -> Iterator[tuple[MetricSpec, Rows | Tables]]:
        """Each exported family with its rows (label values in the spec's order, value), or the
        view's tables for the followed cell metrics."""
        yield catalog.BUILD_INFO, [((self.version, self.build), 1)]
        yield catalog.DEAD_LETTERS_WAITING, [((), self.dead_letters_waiting())]
        owned = self.ownership()
        if not owned.ready:
            return
        if self.before_read is not None:
            self.before_read()
        now = self.clock()
        reader = FigureReader(
            self.rollups,
            self.directory,
            owned.deal_partitions,
            now,
            self.source_labels,
            self.topic_names,
            self.budgets,
            self.settings.stage_probabilities,
        )
        yield from self._intake(owned, now)
        yield from self._table_sizes(owned)
        followed = self.view.read(reader, self.followed)
        for spec in catalog.CATALOG:
            if spec.sources:
                yield spec, followed[spec.name] if spec.name in followed else self._cells(spec, reader)
        yield from self._awaiting(reader, owned)
        yield from self._profiles(owned, now)
        folded = [((label,), count) for label, count in self.budgets.folded_counts().items()]
        yield catalog.LABEL_VALUES_FOLDED, folded

    def _cells(self, spec: MetricSpec, reader: FigureReader) -> Rows:
        return [
            (with_period(spec, labels, period), exported(spec, acc))
            for period, projected in reader.rows(spec)
            for labels, acc in sorted(projected.items())
        ]

    def _owned_reps(self, owned: Ownership) -> list[str]:
        return [rep for rep in self.directory.reps() if self.directory.partition_of(rep) in owned.rep_partitions]

    def _intake(self, owned: Ownership, now: float) -> Iterator[tuple[MetricSpec, Rows]]:
        sources = [(self.intake, name, owned.deal_partitions) for name in self.topic_names.values()]
        sources.append((self.rep_intake, self.settings.topics.reps, owned.rep_partitions))
        processed_by_topic: dict[str, int] = defaultdict(int)
        rejected_by_reason: dict[tuple[str, str], int] = defaultdict(int)
        latest: dict[str, float] = {}
        for store, topic, topic_partitions in sources:
            for partition in topic_partitions:
                tally = IntakeTally.decode(store.get(intake_key(topic, partition)))
                processed_by_topic[topic] += tally.messages
                for reason, count in tally.rejected.items():
                    rejected_by_reason[(topic, reason)] += count
                if tally.latest_event_at is not None and topic != self.settings.topics.reps:  # profiles: no lag
                    latest[topic] = max(latest.get(topic, tally.latest_event_at), tally.latest_event_at)
        yield catalog.EVENTS_PROCESSED, [((topic,), count) for topic, count in sorted(processed_by_topic.items())]
        yield catalog.EVENTS_REJECTED, [(labels, count) for labels, count in sorted(rejected_by_reason.items())]
        yield catalog.EVENT_TIME_LAG, [((topic,), max(0.0, now - at)) for topic, at in sorted(latest.items())]
        yield catalog.LAST_EVENT_TIMESTAMP, [((topic,), at) for topic, at in sorted(latest.items())]

    def _table_sizes(self, owned: Ownership) -> Iterator[tuple[MetricSpec, Rows]]:
        deals, record_bytes = self.rollups.table_size(owned.deal_partitions)
        profiles = [self.directory.history(rep) for rep in self.directory.reps()]
        profile_bytes = sum(len(p.record) for history in profiles for p in history)
        yield catalog.TABLE_KEYS, [((DEALS_TABLE,), deals), ((REP_PROFILES_TABLE,), len(profiles))]
        yield catalog.TABLE_BYTES, [((DEALS_TABLE,), record_bytes), ((REP_PROFILES_TABLE,), profile_bytes)]

    def _awaiting(self, reader: FigureReader, owned: Ownership) -> Iterator[tuple[MetricSpec, Rows]]:
        waiting = reader.awaiting()
        for rep in self._owned_reps(owned):  # every rep gets a series, zero when nobody waits
            waiting.setdefault((rep, team_at(self.directory, rep, None, reader.now)), [0, 0.0, 0])
        capped: dict[tuple[str, str], list] = {}
        for (rep, team), (count, age, over) in waiting.items():
            cell = capped.setdefault((self.budgets.rep(rep), self.budgets.team(team)), [0, 0.0, 0])
            cell[0], cell[1], cell[2] = cell[0] + count, max(cell[1], age), cell[2] + over
        ordered = sorted(capped.items())
        yield catalog.LEADS_AWAITING, [(labels, count) for labels, (count, _, _) in ordered]
        yield catalog.OLDEST_AWAITING, [(labels, age) for labels, (_, age, _) in ordered]
        yield catalog.SLA_BREACHED, [(labels, over) for labels, (_, _, over) in ordered]

    def _profiles(self, owned: Ownership, now: float) -> Iterator[tuple[MetricSpec, Rows]]:
        quota: Rows = []
        targets: Rows = []
        working: Rows = []
        for rep in self._owned_reps(owned):
            profile = profile_at(self.directory, rep, now)
            if profile is None:
                continue
            labels = (self.budgets.rep(rep), self.budgets.team(profile.team))
            working.append((labels, float(working_at(now, profile.timezone, profile.hours))))
            if profile.monthly_quota_micro is not None:
                quota.append(((*labels, self.budgets.currency(profile.currency)), profile.monthly_quota_micro / MICRO))
            for activity, period, target in activity_targets(profile):
                targets.append(((*labels, activity, period), target))
        yield catalog.MONTHLY_QUOTA, summed(quota)
        yield catalog.ACTIVITY_TARGET, summed(targets)
        yield catalog.REP_WORKING, summed(working)
