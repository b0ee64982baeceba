"""The scrape-time collector: reads the aggregates of actively owned partitions.

Nothing is pushed into Prometheus objects per event. On each scrape the collector asks which
partitions this worker actively owns (never standbys) and builds the catalog's families from
their aggregates (:mod:`streams.metrics.figures`, the same code the API uses), so a
partition's series move with it when partitions move between workers. Across workers, series
are disjoint slices: boards and alerts ``sum by`` (or ``max by``). Figures from rep profiles
(quota, targets, a zero series per rep) come from the worker that owns the rep's ``crm.reps``
partition. Until the tables have recovered, only the health families are exported.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.codec import IntakeTally
from streams.config import Settings
from streams.fold.facts import MICRO
from streams.fold.profiles import profile_at, team_at
from streams.fold.worktime import working_at
from streams.metrics import catalog
from streams.metrics.catalog import Kind, MetricSpec
from streams.metrics.figures import (
    FigureReader,
    activity_targets,
    cumulative_buckets,
    scalar,
)
from streams.metrics.labels import SourceLabels
from streams.processor import intake_key
from streams.profiles import RepDirectory
from streams.rollups import Rollups
from streams.tables import DEALS as DEALS_TABLE
from streams.tables import REP_PROFILES as REP_PROFILES_TABLE
from streams.topics import topic_names


@dataclass(frozen=True)
class Ownership:
    """The partitions this worker actively owns, or ``ready=False`` while recovering."""

    ready: bool
    deal_partitions: frozenset[int] = frozenset()
    rep_partitions: frozenset[int] = frozenset()


def _family(spec: MetricSpec) -> Metric:
    if spec.kind is Kind.COUNTER:
        return CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
    if spec.kind is Kind.HISTOGRAM:
        return HistogramMetricFamily(spec.name, spec.help, labels=spec.labels)
    return GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)


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
        clock: Callable[[], float] = time.time,
        before_read: Callable[[], object] | None = None,
    ) -> None:
        self.settings = settings
        self.rollups = rollups
        self.directory = directory
        self.intake = intake
        self.rep_intake = rep_intake
        self.ownership = ownership
        self.version = version
        self.clock = clock
        self.before_read = before_read
        self.source_labels = SourceLabels(settings.sla_by_source)
        self.topic_names = topic_names(settings)

    def describe(self) -> list[Metric]:
        """Declared up front so registering never reads tables that may still be recovering."""
        return [_family(spec) for spec in catalog.CATALOG]

    def collect(self) -> Iterator[Metric]:
        build = _family(catalog.BUILD_INFO)
        build.add_metric([self.version], 1)
        yield build
        owned = self.ownership()
        if not owned.ready:
            return
        if self.before_read is not None:
            self.before_read()
        now = self.clock()
        reader = FigureReader(
            self.rollups, self.directory, owned.deal_partitions, now, self.source_labels, self.topic_names
        )
        yield from self._intake(owned, now)
        yield from self._table_sizes(owned)
        for spec in catalog.CATALOG:
            if spec.sources:
                yield self._cells(spec, reader)
        yield from self._awaiting(reader, owned)
        yield from self._profiles(owned, now)

    def _cells(self, spec: MetricSpec, reader: FigureReader) -> Metric:
        family = _family(spec)
        for period, rows in reader.rows(spec):
            for labels, acc in sorted(rows.items()):
                values = list(labels)
                if period is not None:
                    values.insert(spec.labels.index("period"), period)
                if spec.kind is Kind.HISTOGRAM:
                    buckets, total = cumulative_buckets(spec, acc)
                    family.add_metric(values, buckets, sum_value=total)
                else:
                    family.add_metric(values, scalar(spec, acc))
        return family

    def _owned_reps(self, owned: Ownership) -> list[str]:
        return [rep for rep in self.directory.reps() if self.directory.partition_of(rep) in owned.rep_partitions]

    def _intake(self, owned: Ownership, now: float) -> Iterator[Metric]:
        rejected = _family(catalog.EVENTS_REJECTED)
        processed = _family(catalog.EVENTS_PROCESSED)
        lag, last = _family(catalog.EVENT_TIME_LAG), _family(catalog.LAST_EVENT_TIMESTAMP)
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
        for topic, count in sorted(processed_by_topic.items()):
            processed.add_metric([topic], count)
        for (topic, reason), count in sorted(rejected_by_reason.items()):
            rejected.add_metric([topic, reason], count)
        for topic, at in sorted(latest.items()):
            last.add_metric([topic], at)
            lag.add_metric([topic], max(0.0, now - at))
        yield from (processed, rejected, lag, last)

    def _table_sizes(self, owned: Ownership) -> Iterator[Metric]:
        keys, size = _family(catalog.TABLE_KEYS), _family(catalog.TABLE_BYTES)
        deals, record_bytes = self.rollups.table_size(owned.deal_partitions)
        keys.add_metric([DEALS_TABLE], deals)
        size.add_metric([DEALS_TABLE], record_bytes)
        profiles = [self.directory.history(rep) for rep in self.directory.reps()]
        keys.add_metric([REP_PROFILES_TABLE], len(profiles))
        size.add_metric([REP_PROFILES_TABLE], sum(len(p.record) for history in profiles for p in history))
        yield from (keys, size)

    def _awaiting(self, reader: FigureReader, owned: Ownership) -> Iterator[Metric]:
        waiting = reader.awaiting()
        for rep in self._owned_reps(owned):  # every rep gets a series, zero when nobody waits
            waiting.setdefault((rep, team_at(self.directory, rep, None, reader.now)), [0, 0.0, 0])
        awaiting, oldest, breached = (
            _family(catalog.LEADS_AWAITING),
            _family(catalog.OLDEST_AWAITING),
            _family(catalog.SLA_BREACHED),
        )
        for (rep, team), (count, age, over) in sorted(waiting.items()):
            awaiting.add_metric([rep, team], count)
            oldest.add_metric([rep, team], age)
            breached.add_metric([rep, team], over)
        yield from (awaiting, oldest, breached)

    def _profiles(self, owned: Ownership, now: float) -> Iterator[Metric]:
        quota, targets = _family(catalog.MONTHLY_QUOTA), _family(catalog.ACTIVITY_TARGET)
        working = _family(catalog.REP_WORKING)
        for rep in self._owned_reps(owned):
            profile = profile_at(self.directory, rep, now)
            if profile is None:
                continue
            working.add_metric([rep, profile.team], float(working_at(now, profile.timezone, profile.hours)))
            if profile.monthly_quota_micro is not None:
                quota.add_metric([rep, profile.team, profile.currency], profile.monthly_quota_micro / MICRO)
            for activity, period, target in activity_targets(profile):
                targets.add_metric([rep, profile.team, activity, period], target)
        yield from (quota, targets, working)
