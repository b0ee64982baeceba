"""The API's answers, free of the web framework: parameters in, a response model out, or an
exception that says which error status it is (400 :class:`BadParameter`, 404 :class:`NotFound`,
503 :class:`NotReady`).

A deal is asked of the worker owning its partition; for the rest the worker asked gathers the
parts of every worker of the group (:mod:`streams.api.cluster`)
over internal routes that answer from the asked worker's own partitions only
(:mod:`streams.api.local`); those routes take the period as the asking worker resolved it, so
every worker sums the same period even across midnight.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from streams.api.cluster import segment
from streams.api.local import LocalView, awaiting_lead_body
from streams.api.models import (
    AwaitingBody,
    DealBody,
    MetricRow,
    MetricsBody,
    PercentileRow,
    PeriodBody,
    RatioRow,
    TeamsBody,
)
from streams.api.params import BadParameter, limit_of, period_of
from streams.fold.outputs import instant
from streams.fold.periods import Period, PeriodKind
from streams.metrics.derived import percentiles, ratios
from streams.metrics.report import Report, SubjectKind, mentions, render

INTERNAL = "/internal"


class NotFound(LookupError):
    """An unknown deal, rep or team (an HTTP 404)."""


class Cluster(Protocol):
    """The group's workers, asked for their own parts (:class:`streams.api.cluster.Gatherer`)."""

    async def gather(self, path: str, query: Mapping[str, str], local: Any) -> list[dict[str, Any]]: ...

    def partition_of(self, key: bytes) -> int: ...

    async def ask_owner(self, partition: int, path: str, local: Any) -> dict[str, Any]: ...


class Api:
    def __init__(self, local: LocalView, cluster: Cluster) -> None:
        self.local = local
        self.cluster = cluster
        self.calendar = local.ctx.calendar

    async def deal(self, deal_id: str) -> DealBody:
        answer = self.local.deal(deal_id)
        path = f"{INTERNAL}/deals/{segment(deal_id)}"
        partition = self.cluster.partition_of(deal_id.encode())
        if answer["deal"] is None and partition not in answer["partitions"]:  # the owner's to answer
            answer = await self.cluster.ask_owner(partition, path, lambda: answer)
        found = answer["deal"]
        if found is None:
            # Not where Kafka's default partitioner puts the key: a producer with another
            # partitioner (librdkafka's default) put the deal elsewhere. Ask everyone.
            answers = await self.cluster.gather(path, {}, lambda: self.local.deal(deal_id))
            found = next((answer["deal"] for answer in answers if answer["deal"] is not None), None)
        if found is None:
            raise NotFound(f"unknown deal {deal_id!r}")
        return DealBody.model_validate(found)

    async def metrics(self, subject: SubjectKind, name: str, query: Mapping[str, str]) -> MetricsBody:
        period = period_of(query, self.calendar, self.local.clock())
        internal = {"kind": period[0].value, "label": period[1]}
        answers = await self.cluster.gather(
            f"{INTERNAL}/reports/{subject}/{segment(name)}",
            internal,
            lambda: self.local.report(subject, name, period),
        )
        merged = Report(subject, name, period)
        for answer in answers:
            merged = merged.merge(Report.from_json(answer["report"]))
        if not any(answer["known"] for answer in answers) and not mentions(merged):
            raise NotFound(f"unknown {subject} {name!r}")
        rendered = render(merged)
        return MetricsBody(
            subject=subject,
            name=name,
            period=PeriodBody(kind=period[0].value, label=period[1], start=self.calendar.start_of(period)),
            metrics={metric: [MetricRow(**row) for row in rows] for metric, rows in rendered.items()},
            ratios={name: [RatioRow(**row) for row in rows] for name, rows in ratios(rendered, period[0]).items()},
            percentiles={
                family: [PercentileRow(**row) for row in rows] for family, rows in percentiles(rendered).items()
            },
        )

    async def awaiting(self, team: str, query: Mapping[str, str]) -> AwaitingBody:
        limit = limit_of(query)
        answers = await self.cluster.gather(
            f"{INTERNAL}/awaiting/{segment(team)}",
            {"limit": str(limit)},
            lambda: self.local.awaiting(team, limit),
        )
        total = sum(answer["total"] for answer in answers)
        if not total and not any(answer["known"] for answer in answers):
            raise NotFound(f"unknown team {team!r}")
        now = max(answer["now"] for answer in answers)
        leads = sorted(
            (lead for answer in answers for lead in answer["leads"]),
            key=lambda lead: (lead["created_at"], lead["deal_id"]),
        )
        shown = [awaiting_lead_body(lead, now) for lead in leads[:limit]]  # oldest first; limit >= 1
        return AwaitingBody(
            team=team,
            at=instant(now),
            total=total,
            breached=sum(answer["breached"] for answer in answers),
            oldest_waiting_seconds=shown[0]["waiting_seconds"] if shown else 0.0,
            leads=shown,
        )

    def teams(self) -> TeamsBody:
        self.local.partitions_or_raise()
        return TeamsBody(teams=self.local.teams())

    # The internal routes: this worker's own part.

    def local_deal(self, deal_id: str) -> dict[str, Any]:
        return self.local.deal(deal_id)

    def local_report(self, subject: str, name: str, query: Mapping[str, str]) -> dict[str, Any]:
        if subject not in ("rep", "team"):
            raise NotFound(f"unknown subject {subject!r}")
        return self.local.report(subject, name, self._internal_period(query))  # type: ignore[arg-type]

    def local_awaiting(self, team: str, query: Mapping[str, str]) -> dict[str, Any]:
        return self.local.awaiting(team, limit_of(query))

    def _internal_period(self, query: Mapping[str, str]) -> Period:
        try:
            period = (PeriodKind(query.get("kind", "")), query.get("label", ""))
            named = self.calendar.period_of(period[0], self.calendar.start_of(period).timestamp())
        except (ValueError, OverflowError):
            named = None
        if named != period:
            raise BadParameter("kind and label must name a period as the calendar labels it")
        return period
