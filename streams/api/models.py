"""The API's response bodies: one pydantic model each, the source of the OpenAPI document."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True)


class ErrorBody(_Body):
    error: str = Field(description="What is wrong, naming the parameter or key.")


class FirstResponse(_Body):
    at: AwareDatetime
    kind: Literal["call", "email"]
    rep: str = Field(description="The deal's owner at the touch.")
    seconds: float
    business_seconds: float


class SlaState(_Body):
    state: Literal["waiting", "breached", "answered", "closed"]
    steps_seconds: list[float]
    steps_crossed: int = Field(description="Escalation steps the lead has crossed while waiting.")
    business_hours: bool


class Closed(_Body):
    outcome: Literal["won", "lost"]
    at: AwareDatetime
    lost_reason: str | None = None


class DealBody(_Body):
    deal_id: str
    stage: str = Field(description="The current stage as the CRM named it.")
    owner: str
    team: str = Field(description="The team now (SPEC §2).")
    source: str | None
    deal_type: str
    amount: str | None = Field(description="The latest amount, a decimal string.")
    currency: str
    expected_close_date: date | None
    created_at: AwareDatetime
    first_response: FirstResponse | None
    sla: SlaState
    closed: Closed | None
    alerts_sent: list[str] = Field(description="Keys of the alerts published about the deal.")
    stage_events: int
    activities: int


class PeriodBody(_Body):
    kind: Literal["hour", "day", "week", "month", "quarter", "year"]
    label: str = Field(
        description="The period: a date; a week by its Monday; a month as 2024-03; an hour as its start."
    )
    start: AwareDatetime = Field(description="When it starts, in the reporting timezone.")


class MetricRow(_Body):
    """One series of a catalog metric, without the subject's rep or team label and the period."""

    labels: dict[str, str]
    value: float | None = Field(default=None, description="Counters and gauges, in the metric's unit.")
    count: int | None = Field(default=None, description="Histograms: observations.")
    sum: float | None = Field(default=None, description="Histograms: their sum, in the metric's unit.")
    buckets: dict[str, int] | None = Field(
        default=None, description='Histograms: cumulative counts by upper bound, "+Inf" last.'
    )

    @model_serializer(mode="wrap")
    def _without_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A counter's row has no histogram fields and a histogram's no value."""
        return {key: value for key, value in handler(self).items() if value is not None}


class RatioRow(_Body):
    labels: dict[str, str]
    value: float | None = Field(description="numerator / denominator; null when the denominator is 0.")
    numerator: float
    denominator: float


class PercentileRow(_Body):
    labels: dict[str, str]
    p50: float | None = Field(description="Seconds, interpolated in the buckets as Prometheus' histogram_quantile.")
    p90: float | None
    count: int
    sum: float


class MetricsBody(_Body):
    subject: Literal["rep", "team"]
    name: str
    period: PeriodBody
    ratios: dict[str, list[RatioRow]] = Field(
        description="The catalog's ratios (win rate, conversion, connect rate, attainment, coverage, growth, ...),"
        " each next to its parts."
    )
    percentiles: dict[str, list[PercentileRow]] = Field(
        description="p50 and p90 of the response and cycle histograms, from the buckets /metrics exports."
    )
    metrics: dict[str, list[MetricRow]] = Field(
        description="Every catalog item by its Prometheus name (README: metric catalog); [] where nothing happened."
    )


class AwaitingLeadBody(_Body):
    deal_id: str
    rep: str
    source: str | None
    created_at: AwareDatetime
    waiting_seconds: float
    sla_breached: bool = Field(description="Past its first SLA step now.")


class AwaitingBody(_Body):
    team: str
    at: AwareDatetime = Field(description="The moment the waits are measured at.")
    total: int = Field(description="Leads waiting, all of them (the list stops at `limit`).")
    breached: int = Field(description="Of those, past their first SLA step.")
    oldest_waiting_seconds: float
    leads: list[AwaitingLeadBody] = Field(description="Oldest first.")


class TeamsBody(_Body):
    teams: list[str] = Field(description="The teams of the reps' profiles in force now, sorted.")
