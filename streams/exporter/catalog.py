"""The metric catalog: the one place each exported metric's name, type, help and labels live.

Names follow SPEC §3 (fixed for the boards and alerts). ``name`` is the family name; counters
are exposed with ``_total`` appended and histograms with ``_bucket``/``_count``/``_sum``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from streams.fold.contributions import FIRST_RESPONSE_BUCKETS


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...]

    @property
    def exposed_names(self) -> tuple[str, ...]:
        """The sample names Prometheus sees for this family."""
        if self.kind is Kind.COUNTER:
            return (f"{self.name}_total",)
        if self.kind is Kind.HISTOGRAM:
            return (f"{self.name}_bucket", f"{self.name}_count", f"{self.name}_sum")
        return (self.name,)


def _spec(name: str, kind: Kind, help: str, *labels: str) -> MetricSpec:
    return MetricSpec(f"leadpulse_{name}", kind, help, labels)


CALLS = _spec("calls", Kind.COUNTER, "Calls logged.", "rep", "team", "direction", "outcome")
EMAILS = _spec("emails", Kind.COUNTER, "Email activities.", "rep", "team", "action")
MEETINGS = _spec("meetings", Kind.COUNTER, "Meeting activities.", "rep", "team", "action")
DEALS_CREATED = _spec(
    "deals_created", Kind.COUNTER, "Deals created, by owner and team at creation.", "rep", "team", "source"
)
LEADS_AWAITING = _spec(
    "leads_awaiting_response", Kind.GAUGE, "Deals awaiting a first response, by current owner.", "rep", "team"
)
OLDEST_AWAITING = _spec(
    "lead_oldest_awaiting_seconds",
    Kind.GAUGE,
    "Age of the oldest lead awaiting a first response (0 when none).",
    "rep",
    "team",
)
SLA_BREACHED = _spec(
    "leads_sla_breached",
    Kind.GAUGE,
    "Leads awaiting a first response for longer than their source's SLA.",
    "rep",
    "team",
)
FIRST_RESPONSE = _spec(
    "first_response_seconds",
    Kind.HISTOGRAM,
    "Seconds from deal creation to the first touch, for first responses in the current period.",
    "rep",
    "team",
    "source",
    "period",
)
PIPELINE_DEALS = _spec("pipeline_deals", Kind.GAUGE, "Open deals by current stage and owner.", "rep", "team", "stage")
PIPELINE_AMOUNT = _spec(
    "pipeline_amount",
    Kind.GAUGE,
    "Amount of open deals by current stage and owner.",
    "rep",
    "team",
    "stage",
    "currency",
)
DEALS_WON = _spec("deals_won", Kind.GAUGE, "Deals won in the current period.", "rep", "team", "period")
WON_AMOUNT = _spec(
    "won_amount", Kind.GAUGE, "Amount of deals won in the current period.", "rep", "team", "period", "currency"
)
DEALS_LOST = _spec("deals_lost", Kind.GAUGE, "Deals lost in the current period.", "rep", "team", "period")
EVENTS_REJECTED = _spec("events_rejected", Kind.COUNTER, "Input messages dead-lettered, by reason.", "topic", "reason")
EVENTS_DUPLICATE = _spec("events_duplicate", Kind.COUNTER, "Input events with an already seen event_id.", "topic")
EVENTS_PROCESSED = _spec(
    "events_processed", Kind.COUNTER, "Input messages consumed (valid, rejected and duplicate).", "topic"
)
TABLE_KEYS = _spec("table_keys", Kind.GAUGE, "Records in a table, for actively owned partitions.", "table")
TABLE_BYTES = _spec("table_bytes", Kind.GAUGE, "Bytes of a table's records, for actively owned partitions.", "table")
BUILD_INFO = _spec("build_info", Kind.GAUGE, "LeadPulse version (always 1).", "version")

CATALOG: tuple[MetricSpec, ...] = (
    CALLS,
    EMAILS,
    MEETINGS,
    DEALS_CREATED,
    LEADS_AWAITING,
    OLDEST_AWAITING,
    SLA_BREACHED,
    FIRST_RESPONSE,
    PIPELINE_DEALS,
    PIPELINE_AMOUNT,
    DEALS_WON,
    WON_AMOUNT,
    DEALS_LOST,
    EVENTS_REJECTED,
    EVENTS_DUPLICATE,
    EVENTS_PROCESSED,
    TABLE_KEYS,
    TABLE_BYTES,
    BUILD_INFO,
)

HISTOGRAM_BUCKETS = FIRST_RESPONSE_BUCKETS
