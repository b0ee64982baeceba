"""Every catalog item for one rep or one team, in any kept period: what the HTTP API serves.

Computed by the code that exports the current period (:mod:`streams.metrics.figures`), over the
partitions one worker owns, as raw additive parts (counts, micro-units, histogram buckets). A
rep's deals live in every partition, so a worker asked for a report gathers the parts of every
worker of the group and merges them (:meth:`Report.merge`) before rendering: parts add up,
the oldest wait is a maximum, and profile figures (the same on every worker) are taken once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from streams.fold.facts import MICRO
from streams.fold.periods import Period, PeriodKind
from streams.fold.profiles import profile_at
from streams.metrics import catalog
from streams.metrics.figures import Accumulator, FigureReader, activity_targets
from streams.metrics.spec import Kind, MetricSpec, Scope

SubjectKind = Literal["rep", "team"]
Parts = dict[str, dict[tuple[str, ...], list[float]]]  # metric -> labels -> accumulator

# Per worker, not per rep or team, or a profile's state now: the API reports these under /metrics only.
ENGINE_ONLY = frozenset(
    spec.name
    for spec in (
        catalog.EVENTS_REJECTED,
        catalog.EVENTS_DUPLICATE,
        catalog.EVENTS_PROCESSED,
        catalog.EVENT_TIME_LAG,
        catalog.LAST_EVENT_TIMESTAMP,
        catalog.TABLE_KEYS,
        catalog.TABLE_BYTES,
        catalog.BUILD_INFO,
        catalog.REP_WORKING,  # a profile's state now, for the idle-rep alert
    )
)
_FROM_PROFILES = frozenset({catalog.MONTHLY_QUOTA.name, catalog.ACTIVITY_TARGET.name})
_AWAITING = (catalog.LEADS_AWAITING, catalog.OLDEST_AWAITING, catalog.SLA_BREACHED)


def reported_specs() -> list[MetricSpec]:
    return [spec for spec in catalog.CATALOG if spec.name not in ENGINE_ONLY]


def labels_kept(spec: MetricSpec) -> tuple[str, ...]:
    """A metric's labels in a report: neither the subject (rep, team) nor the period."""
    return tuple(label for label in spec.cell_labels if label not in ("rep", "team"))


@dataclass
class Report:
    subject: SubjectKind
    name: str
    period: Period
    parts: Parts = field(default_factory=dict)

    def merge(self, other: Report) -> Report:
        """This report and another worker's for the same subject and period."""
        merged: Parts = {
            metric: {labels: list(acc) for labels, acc in rows.items()} for metric, rows in self.parts.items()
        }
        for metric, rows in other.parts.items():
            target = merged.setdefault(metric, {})
            for labels, acc in rows.items():
                mine = target.get(labels)
                if mine is None:
                    target[labels] = list(acc)
                elif metric == catalog.OLDEST_AWAITING.name:
                    mine[0] = max(mine[0], acc[0])
                elif metric not in _FROM_PROFILES:
                    for index, value in enumerate(acc):
                        mine[index] += value
        return Report(self.subject, self.name, self.period, merged)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        kind, label = data["period"]
        parts: Parts = {
            metric: {tuple(labels): [float(value) for value in acc] for labels, acc in rows}
            for metric, rows in data["parts"].items()
        }
        return cls(data["subject"], data["name"], (PeriodKind(kind), label), parts)

    def to_json(self) -> dict[str, Any]:
        """The parts as plain JSON (to send to the worker that gathers)."""
        return {
            "subject": self.subject,
            "name": self.name,
            "period": [self.period[0].value, self.period[1]],
            "parts": {
                metric: [[list(labels), acc] for labels, acc in rows.items()] for metric, rows in self.parts.items()
            },
        }


def build_report(reader: FigureReader, subject: SubjectKind, name: str, period: Period) -> Report:
    """One worker's part of the report, over the partitions ``reader`` reads."""
    where: dict[str, str] = {subject: name}
    parts: Parts = {}
    for spec in reported_specs():
        if spec.sources:
            keep = labels_kept(spec)
            if spec.scope in (Scope.PERIOD, Scope.PREVIOUS_PERIOD):
                rows = reader.period_rows(spec, period, where, keep)
            else:
                rows = next(values for _, values in reader.rows(spec, where, keep))
            parts[spec.name] = {labels: [float(value) for value in acc] for labels, acc in rows.items()}
    awaiting = [cell for (rep, team), cell in reader.awaiting().items() if (rep if subject == "rep" else team) == name]
    parts[catalog.LEADS_AWAITING.name] = {(): [float(sum(cell[0] for cell in awaiting))]}
    parts[catalog.OLDEST_AWAITING.name] = {(): [max((cell[1] for cell in awaiting), default=0.0)]}
    parts[catalog.SLA_BREACHED.name] = {(): [float(sum(cell[2] for cell in awaiting))]}
    parts.update(_profile_parts(reader, subject, name))
    return Report(subject, name, period, parts)


def _profile_parts(reader: FigureReader, subject: SubjectKind, name: str) -> Parts:
    quota: dict[tuple[str, ...], list[float]] = {}
    targets: dict[tuple[str, ...], list[float]] = {}
    reps: Iterable[str] = [name] if subject == "rep" else reader.profiles.reps()
    for rep in reps:
        profile = profile_at(reader.profiles, rep, reader.now)
        if profile is None or (subject == "team" and profile.team != name):
            continue
        if profile.monthly_quota_micro is not None:
            quota.setdefault((profile.currency,), [0.0])[0] += profile.monthly_quota_micro
        for activity, period, target in activity_targets(profile):
            targets.setdefault((activity, period), [0.0])[0] += target
    return {catalog.MONTHLY_QUOTA.name: quota, catalog.ACTIVITY_TARGET.name: targets}


def render(report: Report) -> dict[str, list[dict[str, Any]]]:
    """Every reported metric as ``[{"labels": {...}, "value": v}]`` (histograms: count, sum and
    cumulative buckets instead of value), in the metric's units."""
    out: dict[str, list[dict[str, Any]]] = {}
    for spec in reported_specs():
        names = labels_shown(spec)
        out[spec.name] = [
            {"labels": dict(zip(names, labels, strict=True)), **_value(spec, acc)}
            for labels, acc in sorted(report.parts.get(spec.name, {}).items())
        ]
    return out


def mentions(report: Report) -> bool:
    """Whether anything ever happened for the subject in these parts (lifetime and live figures
    included, whatever the period): an unknown rep or team has no non-zero figure at all."""
    return any(any(value for value in acc) for rows in report.parts.values() for acc in rows.values())


def labels_shown(spec: MetricSpec) -> tuple[str, ...]:
    """The labels of a metric's rows in a rendered report."""
    if spec.sources:
        return labels_kept(spec)
    if spec.name == catalog.MONTHLY_QUOTA.name:
        return ("currency",)
    if spec.name == catalog.ACTIVITY_TARGET.name:
        return ("activity", "period")
    return ()


def _value(spec: MetricSpec, acc: Accumulator | list[float]) -> dict[str, Any]:
    if spec.kind is Kind.HISTOGRAM:
        running, buckets = 0.0, {}
        for bound, count in zip([*map(str, spec.buckets), "+Inf"], acc[:-1], strict=True):
            running += count
            buckets[bound] = int(running)
        return {"count": int(running), "sum": acc[-1] / MICRO, "buckets": buckets}
    in_micro = any(source.total for source in spec.sources) or spec.name == catalog.MONTHLY_QUOTA.name
    value = acc[0] / MICRO if in_micro else acc[0]
    return {"value": int(value) if float(value).is_integer() and not in_micro else value}
