"""The scrape-time collector: reads the aggregates of actively owned partitions.

Nothing is pushed into Prometheus objects per event. On each scrape the collector asks which
partitions this worker actively owns (never standbys) and builds the catalog's families from
their aggregates, so a partition's series move with it when partitions move between workers.
Across workers, series are disjoint slices: boards and alerts ``sum by`` (or ``max by``).
Until the tables have recovered, only the health families are exported.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.codec import IntakeTally
from streams.config import Settings
from streams.exporter import catalog
from streams.exporter.catalog import MetricSpec
from streams.exporter.labels import SourceLabels, stage_label
from streams.fold.contributions import LIFETIME, LIVE, Family
from streams.fold.facts import MICRO, DealTopic
from streams.periods import Calendar, PeriodKind
from streams.processor import intake_key
from streams.profiles import RepDirectory
from streams.rollups import Rollups
from streams.tables import DEALS as DEALS_TABLE


@dataclass(frozen=True)
class Ownership:
    """The partitions this worker actively owns, or ``ready=False`` while recovering."""

    ready: bool
    deal_partitions: frozenset[int] = frozenset()
    rep_partitions: frozenset[int] = frozenset()


def _family(spec: MetricSpec) -> Metric:
    if spec.kind is catalog.Kind.COUNTER:
        return CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
    if spec.kind is catalog.Kind.HISTOGRAM:
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
    ) -> None:
        self.settings = settings
        self.rollups = rollups
        self.directory = directory
        self.intake = intake
        self.rep_intake = rep_intake
        self.ownership = ownership
        self.version = version
        self.clock = clock
        self.calendar: Calendar = rollups.calendar
        self.source_label = SourceLabels(settings.sla_by_source)
        self.topic_names = {topic: str(getattr(settings.topics, topic.name.lower())) for topic in DealTopic}

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
        partitions = sorted(owned.deal_partitions)
        yield from self._intake(owned)
        yield from self._table_sizes(partitions)
        yield from self._activities(partitions)
        yield from self._created(partitions)
        yield from self._awaiting(partitions)
        yield from self._first_responses(partitions)
        yield from self._pipeline(partitions)
        yield from self._closed(partitions)

    # --- helpers -------------------------------------------------------------------------

    def _team(self, rep: str | None, team: str | None) -> str:
        return self.directory.team_of(rep or "", team)

    def _sum(
        self, scope: tuple[str, str], family: Family, partitions: Iterable[int], labels: Callable[..., tuple[str, ...]]
    ) -> dict[tuple[str, ...], list[int]]:
        """Counts and totals of a family, regrouped by exported label values."""
        merged: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0])
        for raw, count, total in self.rollups.read(scope, family, partitions):
            cell = merged[labels(*raw)]
            cell[0] += count
            cell[1] += total
        return merged

    def _current_periods(self) -> list[tuple[PeriodKind, str]]:
        return list(self.calendar.periods_of(self.clock()))

    # --- families ------------------------------------------------------------------------

    def _intake(self, owned: Ownership) -> Iterator[Metric]:
        rejected = _family(catalog.EVENTS_REJECTED)
        processed = _family(catalog.EVENTS_PROCESSED)
        sources = [(self.intake, name, owned.deal_partitions) for name in self.topic_names.values()]
        sources.append((self.rep_intake, self.settings.topics.reps, owned.rep_partitions))
        processed_by_topic: dict[str, int] = defaultdict(int)
        rejected_by_reason: dict[tuple[str, str], int] = defaultdict(int)
        for store, topic, topic_partitions in sources:
            for partition in topic_partitions:
                tally = IntakeTally.decode(store.get(intake_key(topic, partition)))
                processed_by_topic[topic] += tally.messages
                for reason, count in tally.rejected.items():
                    rejected_by_reason[(topic, reason)] += count
        for topic, count in sorted(processed_by_topic.items()):
            processed.add_metric([topic], count)
        for (topic, reason), count in sorted(rejected_by_reason.items()):
            rejected.add_metric([topic, reason], count)
        duplicates = _family(catalog.EVENTS_DUPLICATE)
        by_topic = self._sum(LIFETIME, Family.DUPLICATES, owned.deal_partitions, lambda topic: (topic,))
        for (topic,), (count, _) in sorted(by_topic.items()):
            duplicates.add_metric([self.topic_names[DealTopic[topic.upper()]]], count)
        yield from (processed, rejected, duplicates)

    def _table_sizes(self, partitions: list[int]) -> Iterator[Metric]:
        keys, size = _family(catalog.TABLE_KEYS), _family(catalog.TABLE_BYTES)
        deals, record_bytes = self.rollups.table_size(partitions)
        keys.add_metric([DEALS_TABLE], deals)
        size.add_metric([DEALS_TABLE], record_bytes)
        yield from (keys, size)

    def _activities(self, partitions: list[int]) -> Iterator[Metric]:
        calls = _family(catalog.CALLS)
        for labels, (count, _) in sorted(
            self._sum(LIFETIME, Family.CALLS, partitions, lambda r, t, d, o: (r, self._team(r, t), d, o)).items()
        ):
            calls.add_metric(list(labels), count)
        emails = _family(catalog.EMAILS)
        for labels, (count, _) in sorted(
            self._sum(LIFETIME, Family.EMAILS, partitions, lambda r, t, a, _p: (r, self._team(r, t), a)).items()
        ):
            emails.add_metric(list(labels), count)
        meetings = _family(catalog.MEETINGS)
        for labels, (count, _) in sorted(
            self._sum(LIFETIME, Family.MEETINGS, partitions, lambda r, t, a: (r, self._team(r, t), a)).items()
        ):
            meetings.add_metric(list(labels), count)
        yield from (calls, emails, meetings)

    def _created(self, partitions: list[int]) -> Iterator[Metric]:
        created = _family(catalog.DEALS_CREATED)
        merged = self._sum(
            LIFETIME, Family.CREATED, partitions, lambda r, t, s: (r, self._team(r, t), self.source_label(s))
        )
        for labels, (count, _) in sorted(merged.items()):
            created.add_metric(list(labels), count)
        yield created

    def _awaiting(self, partitions: list[int]) -> Iterator[Metric]:
        now = self.clock()
        # (rep, team) -> [count, oldest age, breached]; every profiled rep gets a zero series.
        waiting: dict[tuple[str, str], list[float]] = {
            (rep, self._team(rep, None)): [0, 0.0, 0] for rep in self.directory.reps()
        }
        for _deal, lead in self.rollups.awaiting(partitions):
            cell = waiting.setdefault((lead.rep, self._team(lead.rep, lead.team)), [0, 0.0, 0])
            age = max(0.0, now - lead.created_at)
            cell[0] += 1
            cell[1] = max(cell[1], age)
            if age > self.settings.sla_seconds(lead.source):
                cell[2] += 1
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

    def _first_responses(self, partitions: list[int]) -> Iterator[Metric]:
        histogram = _family(catalog.FIRST_RESPONSE)
        bounds = catalog.HISTOGRAM_BUCKETS
        for period in self._current_periods():
            per_series: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0] * (len(bounds) + 2))
            for (rep, team, source, bucket), count, total in self.rollups.read(
                period, Family.FIRST_RESPONSE, partitions
            ):
                cell = per_series[(rep, self._team(rep, team), self.source_label(source), period[0].value)]
                cell[int(bucket)] += count
                cell[-1] += total
            for labels, cell in sorted(per_series.items()):
                cumulative, buckets = 0, []
                for bound, count in zip([*map(str, bounds), "+Inf"], cell[:-1], strict=True):
                    cumulative += count
                    buckets.append((bound, cumulative))
                histogram.add_metric(list(labels), buckets, sum_value=cell[-1] / MICRO)
        yield histogram

    def _pipeline(self, partitions: list[int]) -> Iterator[Metric]:
        deals, amounts = _family(catalog.PIPELINE_DEALS), _family(catalog.PIPELINE_AMOUNT)
        by_stage: dict[tuple[str, ...], int] = defaultdict(int)
        for (rep, team, stage, currency), (count, total) in self._sum(
            LIVE, Family.PIPELINE, partitions, lambda r, t, s, c: (r, self._team(r, t), stage_label(s), c)
        ).items():
            by_stage[(rep, team, stage)] += count
            amounts.add_metric([rep, team, stage, currency], total / MICRO)
        for labels, count in sorted(by_stage.items()):
            deals.add_metric(list(labels), count)
        yield from (deals, amounts)

    def _closed(self, partitions: list[int]) -> Iterator[Metric]:
        won, won_amount, lost = (
            _family(catalog.DEALS_WON),
            _family(catalog.WON_AMOUNT),
            _family(catalog.DEALS_LOST),
        )
        for period in self._current_periods():
            kind = period[0].value
            won_by_rep: dict[tuple[str, str], int] = defaultdict(int)
            for (rep, team, currency), (count, total) in self._sum(
                period, Family.WON, partitions, lambda r, t, c: (r, self._team(r, t), c)
            ).items():
                won_by_rep[(rep, team)] += count
                won_amount.add_metric([rep, team, kind, currency], total / MICRO)
            for (rep, team), count in sorted(won_by_rep.items()):
                won.add_metric([rep, team, kind], count)
            for (rep, team), (count, _) in sorted(
                self._sum(period, Family.LOST, partitions, lambda r, t: (r, self._team(r, t))).items()
            ):
                lost.add_metric([rep, team, kind], count)
        yield from (won, won_amount, lost)
