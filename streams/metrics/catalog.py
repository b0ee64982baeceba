"""The metric catalog: the one place each metric's name, type, help, labels and source live.

Names follow SPEC §3 (fixed for the boards and alerts). ``name`` is the family name; counters
are exposed with ``_total`` appended and histograms with ``_bucket``/``_count``/``_sum``.

Most metrics are projections of the aggregates' cells (:class:`CellSource`): a cell's raw
labels are widened to named label values (teams already resolved, sources, stages and reasons
mapped onto closed sets), then summed over the labels the metric does not carry. The exporter
(current periods) and the HTTP API (any kept period, one rep or team) compute them with the
same code (:mod:`streams.metrics.figures`). The rest (awaiting leads, profile figures, engine
health) are computed by the functions named in :mod:`streams.metrics.figures`.
"""

from __future__ import annotations

from collections.abc import Callable

from streams.fold.contributions import FIRST_RESPONSE_BUCKETS, SALES_CYCLE_BUCKETS, STAGE_DWELL_BUCKETS, Family
from streams.fold.periods import STORED, PeriodKind
from streams.metrics.spec import CellSource, Kind, Labelling, MetricSpec, Raw, Resolve, Scope

# Slow-moving figures skip the hour: series cost on every scrape (SPEC §3's budget), and a deal's
# close or stage change in "this hour" says little. The API serves every kind from the same cells.
DEAL_PERIODS = (PeriodKind.DAY, PeriodKind.WEEK, PeriodKind.MONTH)
# The must-exist won and lost figures carry every period, the fiscal quarter and year included (SPEC §3).
EVERY_PERIOD = tuple(PeriodKind)
# First-response histograms (13 series a label set) skip the hour: nothing on the board or in the
# alerts reads "this hour", and the busiest hour would add 9,100 rep series; the by-rep one keeps the
# day (the floor) and the month (coaching), its team sums come from the by-source family.
REP_RESPONSE_PERIODS = (PeriodKind.DAY, PeriodKind.MONTH)
# Stage dwell and transitions move over weeks: the month is the board's view, days and weeks the API's.
MONTH_ONLY = (PeriodKind.MONTH,)


def _spec(
    name: str,
    kind: Kind,
    help: str,
    labels: str,
    scope: Scope = Scope.ENGINE,
    *sources: CellSource,
    buckets: tuple[int, ...] = (),
    periods: tuple[PeriodKind, ...] = STORED,
) -> MetricSpec:
    return MetricSpec(f"leadpulse_{name}", kind, help, tuple(labels.split()), scope, sources, buckets, periods)


def _cells(
    family: Family,
    names: str,
    wide: Callable[..., tuple[str, ...] | None],
    total: bool = False,
    volatile: bool = False,
    weighted: bool = False,
) -> CellSource:
    return CellSource(family, tuple(names.split()), wide, total, volatile, weighted)


# --- how raw cells widen (one function per family layout) -----------------------------------
# Teams in period and lifetime cells are resolved strings; LIVE cells resolve them now.


def _by_source(raw: Raw, r: Labelling) -> tuple[str, ...]:
    rep, team, source, *bucket = raw
    return (rep, team, r.source_label(source), *bucket)  # type: ignore[return-value,arg-type]


def _as_is(raw: Raw, r: Labelling) -> tuple[str, ...]:
    return raw  # type: ignore[return-value,arg-type]


def _lost(raw: Raw, r: Resolve) -> tuple[str, ...]:
    rep, team, reason, proposal = raw
    return (rep, team, r.reason_label(reason), proposal)  # type: ignore[return-value,arg-type]


def _transitions(raw: Raw, r: Labelling) -> tuple[str, ...]:
    rep, team, left, entered = raw
    return (rep, team, r.stage_label(left), r.stage_label(entered))  # type: ignore[arg-type,return-value]


def _dwell(raw: Raw, r: Labelling) -> tuple[str, ...]:
    rep, team, stage, bucket = raw
    return (rep, team, r.stage_label(stage), bucket)  # type: ignore[arg-type,return-value]


def _pipeline(raw: Raw, r: Resolve) -> tuple[str, ...]:
    rep, team, stage, currency = raw
    return (rep, r.team_now(rep, team), r.stage_label(stage), currency)  # type: ignore[arg-type,return-value]


def _forecast(raw: Raw, r: Resolve) -> tuple[str, ...]:
    rep, team, stage, currency = raw
    return (r.team_now(rep, team), r.stage_label(stage), currency)  # type: ignore[arg-type,return-value]


def _slipped(raw: Raw, r: Resolve) -> tuple[str, ...] | None:
    rep, team, currency, expected_close = raw
    if expected_close >= r.today:  # type: ignore[operator]
        return None
    return (rep, r.team_now(rep, team), currency)  # type: ignore[arg-type,return-value]


def _activity(kind: str, wanted: Callable[[Raw], bool]) -> Callable[[Raw, Resolve], tuple[str, ...] | None]:
    """A call, email or meeting cell as one ``activity`` of a rep, when it is of that kind."""

    def widen(raw: Raw, r: Labelling) -> tuple[str, ...] | None:
        return (raw[0], raw[1], kind) if wanted(raw) else None  # type: ignore[return-value,arg-type]

    return widen


_CALLS = _cells(Family.CALLS, "rep team direction outcome", _as_is)
_EMAILS = _cells(Family.EMAILS, "rep team action personalized", _as_is)
_MEETINGS = _cells(Family.MEETINGS, "rep team action", _as_is)
_CREATED = _cells(Family.CREATED, "rep team source", _by_source)
_WON = _cells(Family.WON, "rep team currency deal_type proposal", _as_is)
_WON_AMOUNT = _cells(Family.WON, "rep team currency deal_type proposal", _as_is, total=True)
_LOST = _cells(Family.LOST, "rep team reason proposal", _lost, volatile=True)
_ACTIVITY = "rep team activity"

# --- SPEC §3 must-exist ----------------------------------------------------------------------

CALLS = _spec("calls", Kind.COUNTER, "Calls logged.", "rep team direction outcome", Scope.LIFETIME, _CALLS)
EMAILS = _spec("emails", Kind.COUNTER, "Email activities.", "rep team action", Scope.LIFETIME, _EMAILS)
MEETINGS = _spec("meetings", Kind.COUNTER, "Meeting activities.", "rep team action", Scope.LIFETIME, _MEETINGS)
DEALS_CREATED = _spec(
    "deals_created",
    Kind.COUNTER,
    "Deals created, by owner and team at creation.",
    "rep team source",
    Scope.LIFETIME,
    _CREATED,
)
LEADS_AWAITING = _spec(
    "leads_awaiting_response", Kind.GAUGE, "Deals awaiting a first response, by current owner.", "rep team", Scope.LIVE
)
OLDEST_AWAITING = _spec(
    "lead_oldest_awaiting_seconds",
    Kind.GAUGE,
    "Age of the oldest lead awaiting a first response (0 when none).",
    "rep team",
    Scope.LIVE,
)
SLA_BREACHED = _spec(
    "leads_sla_breached",
    Kind.GAUGE,
    "Leads awaiting a first response for longer than their source's SLA.",
    "rep team",
    Scope.LIVE,
)
_FIRST_RESPONSE = _cells(Family.FIRST_RESPONSE, "rep team source bucket", _by_source, total=True)
FIRST_RESPONSE = _spec(
    "first_response_seconds",
    Kind.HISTOGRAM,
    "Seconds from deal creation to the first touch, for first responses in the current period.",
    "rep team period",
    Scope.PERIOD,
    _FIRST_RESPONSE,
    buckets=FIRST_RESPONSE_BUCKETS,
    periods=REP_RESPONSE_PERIODS,
)
FIRST_RESPONSE_BY_SOURCE = _spec(
    "first_response_by_source_seconds",
    Kind.HISTOGRAM,
    "First responses in the current period by lead source (sums equal the rep-level family's per team).",
    "team source period",
    Scope.PERIOD,
    _FIRST_RESPONSE,
    buckets=FIRST_RESPONSE_BUCKETS,
    periods=DEAL_PERIODS,
)
_PIPELINE = "rep team stage currency"
PIPELINE_DEALS = _spec(
    "pipeline_deals",
    Kind.GAUGE,
    "Open deals by current stage and owner.",
    "rep team stage",
    Scope.LIVE,
    _cells(Family.PIPELINE, _PIPELINE, _pipeline, volatile=True),
)
PIPELINE_AMOUNT = _spec(
    "pipeline_amount",
    Kind.GAUGE,
    "Amount of open deals by current stage and owner.",
    "rep team stage currency",
    Scope.LIVE,
    _cells(Family.PIPELINE, _PIPELINE, _pipeline, total=True, volatile=True),
)
WEIGHTED_PIPELINE = _spec(
    "weighted_pipeline_amount",
    Kind.GAUGE,
    "Amount of open deals times the probability of their current stage (LEADPULSE_STAGE_PROBABILITIES), by owner.",
    _PIPELINE,
    Scope.LIVE,
    _cells(Family.PIPELINE, _PIPELINE, _pipeline, total=True, volatile=True, weighted=True),
)
FORECAST_WEIGHTED = _spec(
    "forecast_weighted_amount",
    Kind.GAUGE,
    "The revenue forecast's open part: the weighted amount of open deals whose expected close date falls in the"
    " current month, fiscal quarter or year, by team now (the forecast adds the period's won amount).",
    "team currency period",
    Scope.PERIOD,
    _cells(Family.FORECAST, "team stage currency", _forecast, total=True, volatile=True, weighted=True),
    periods=(PeriodKind.MONTH, PeriodKind.QUARTER, PeriodKind.YEAR),
)
DEALS_WON = _spec(
    "deals_won",
    Kind.GAUGE,
    "Deals won in the current period.",
    "rep team period",
    Scope.PERIOD,
    _WON,
    periods=EVERY_PERIOD,
)
WON_AMOUNT = _spec(
    "won_amount",
    Kind.GAUGE,
    "Amount of deals won in the current period.",
    "rep team period currency",
    Scope.PERIOD,
    _WON_AMOUNT,
    periods=EVERY_PERIOD,
)
DEALS_LOST = _spec(
    "deals_lost",
    Kind.GAUGE,
    "Deals lost in the current period.",
    "rep team period",
    Scope.PERIOD,
    _LOST,
    periods=EVERY_PERIOD,
)
EVENTS_REJECTED = _spec("events_rejected", Kind.COUNTER, "Input messages dead-lettered, by reason.", "topic reason")
EVENTS_DUPLICATE = _spec(
    "events_duplicate",
    Kind.COUNTER,
    "Input events with an already seen event_id.",
    "topic",
    Scope.LIFETIME,
    _cells(Family.DUPLICATES, "topic", lambda raw, r: (r.topic_name(raw[0]),)),
)

# --- the rest of the catalog -----------------------------------------------------------------

ACTIVITIES = _spec(
    "activities",
    Kind.GAUGE,
    "A rep's activity in the current period, next to the targets: calls (all), emails_sent, meetings_held.",
    "rep team activity period",
    Scope.PERIOD,
    _cells(Family.CALLS, _ACTIVITY, _activity("calls", lambda raw: True)),
    _cells(Family.EMAILS, _ACTIVITY, _activity("emails_sent", lambda raw: raw[2] == "sent")),
    _cells(Family.MEETINGS, _ACTIVITY, _activity("meetings_held", lambda raw: raw[2] == "held")),
    periods=DEAL_PERIODS,
)
ACTIVITY_TARGET = _spec(
    "activity_target",
    Kind.GAUGE,
    "The rep profile's activity targets: calls and emails_sent per day, meetings_held per week.",
    "rep team activity period",
    Scope.LIVE,
)
ACTIVITY_OUTCOMES = _spec(
    "activity_outcomes",
    Kind.GAUGE,
    "A team's activity by outcome in the current period (the parts of connect rate, average handle time, "
    "personalization and bounce rate): calls_outbound, calls_connected (outbound and connected), calls_handled "
    "(connected, both directions), emails_sent, emails_personalized (sent), emails_bounced.",
    "team activity period",
    Scope.PERIOD,
    _cells(Family.CALLS, _ACTIVITY, _activity("calls_outbound", lambda raw: raw[2] == "outbound")),
    _cells(
        Family.CALLS,
        _ACTIVITY,
        _activity("calls_connected", lambda raw: raw[2] == "outbound" and raw[3] == "connected"),
    ),
    _cells(Family.CALLS, _ACTIVITY, _activity("calls_handled", lambda raw: raw[3] == "connected")),
    _cells(Family.EMAILS, _ACTIVITY, _activity("emails_sent", lambda raw: raw[2] == "sent")),
    _cells(
        Family.EMAILS,
        _ACTIVITY,
        _activity("emails_personalized", lambda raw: raw[2] == "sent" and raw[3] == "true"),
    ),
    _cells(Family.EMAILS, _ACTIVITY, _activity("emails_bounced", lambda raw: raw[2] == "bounced")),
    periods=DEAL_PERIODS,
)
CALL_HANDLE_SECONDS = _spec(
    "call_handle_seconds",
    Kind.GAUGE,
    "Talk plus wrap-up seconds of connected calls in the current period: average handle time's numerator.",
    "team period",
    Scope.PERIOD,
    _cells(Family.CALLS, "rep team", lambda raw, r: raw[:2] if raw[3] == "connected" else None, total=True),
    periods=DEAL_PERIODS,
)
LEADS_CREATED = _spec(
    "leads_created",
    Kind.GAUGE,
    "Deals created in the current period, by lead source (team at creation).",
    "team source period",
    Scope.PERIOD,
    _CREATED,
)
LEADS_QUALIFIED = _spec(
    "leads_qualified",
    Kind.GAUGE,
    "SQLs: deals whose first `qualified` stage event falls in the current period, by lead source.",
    "team source period",
    Scope.PERIOD,
    _cells(Family.QUALIFIED, "rep team source", _by_source),
)
WON_AMOUNT_PREVIOUS = _spec(
    "won_amount_previous_period",
    Kind.GAUGE,
    "Amount won in the previous period of the same kind (revenue growth's denominator).",
    "team period currency",
    Scope.PREVIOUS_PERIOD,
    _WON_AMOUNT,
    periods=DEAL_PERIODS,
)
BUSINESS_RESPONSE = _spec(
    "first_response_business_seconds",
    Kind.HISTOGRAM,
    "The part of each first response inside the owner's working hours, in the current period (by team: "
    "the series budget; a rep's figures are in the API).",
    "team period",
    Scope.PERIOD,
    _cells(Family.BUSINESS_RESPONSE, "rep team bucket", _as_is, total=True),
    buckets=FIRST_RESPONSE_BUCKETS,
)
RE_RESPONSE = _spec(
    "re_response_seconds",
    Kind.HISTOGRAM,
    "Inbound activity (email received, inbound call) to the next touch, for touches in the current period.",
    "team period",
    Scope.PERIOD,
    _cells(Family.RE_RESPONSE, "rep team bucket", _as_is, total=True),
    buckets=FIRST_RESPONSE_BUCKETS,
)
SALES_CYCLE = _spec(
    "sales_cycle_seconds",
    Kind.HISTOGRAM,
    "Creation to close of deals won in the current period (buckets of 1 to 365 days).",
    "team period",
    Scope.PERIOD,
    _cells(Family.SALES_CYCLE, "rep team bucket", _as_is, total=True),
    buckets=SALES_CYCLE_BUCKETS,
    periods=DEAL_PERIODS,
)
STAGE_DWELL = _spec(
    "stage_dwell_seconds",
    Kind.HISTOGRAM,
    "Time a deal spent in a stage, observed when it left the stage in the current period.",
    "team stage period",
    Scope.PERIOD,
    _cells(Family.STAGE_DWELL, "rep team stage bucket", _dwell, total=True),
    buckets=STAGE_DWELL_BUCKETS,
    periods=MONTH_ONLY,
)
STAGE_TRANSITIONS = _spec(
    "stage_transitions",
    Kind.GAUGE,
    "Deals moving from one stage to another in the current period.",
    "team from_stage to_stage period",
    Scope.PERIOD,
    _cells(Family.TRANSITIONS, "rep team from_stage to_stage", _transitions),
    periods=MONTH_ONLY,
)
CLOSED_AFTER_PROPOSAL = _spec(
    "deals_closed_after_proposal",
    Kind.GAUGE,
    "Deals closed in the current period that had reached `proposal`, by outcome (won, lost).",
    "team outcome period",
    Scope.PERIOD,
    _cells(Family.WON, "rep team outcome", lambda raw, r: (*raw[:2], "won") if raw[4] == "true" else None),
    _cells(Family.LOST, "rep team outcome", lambda raw, r: (*raw[:2], "lost") if raw[3] == "true" else None),
    periods=DEAL_PERIODS,
)
LOST_BY_REASON = _spec(
    "deals_lost_by_reason",
    Kind.GAUGE,
    "Deals lost in the current period by lost_reason (the 20 most frequent by name, the rest `other`).",
    "team reason period",
    Scope.PERIOD,
    _LOST,
    periods=DEAL_PERIODS,
)
DEALS_SLIPPED = _spec(
    "deals_slipped",
    Kind.GAUGE,
    "Open deals whose expected close date is before today (reporting timezone), by current owner.",
    "rep team",
    Scope.LIVE,
    _cells(Family.SLIPPING, "rep team currency", _slipped, volatile=True),
)
SLIPPED_AMOUNT = _spec(
    "slipped_amount",
    Kind.GAUGE,
    "Amount of those slipped deals.",
    "rep team currency",
    Scope.LIVE,
    _cells(Family.SLIPPING, "rep team currency", _slipped, total=True, volatile=True),
)
MONTHLY_QUOTA = _spec(
    "monthly_quota",
    Kind.GAUGE,
    "The rep profile's monthly quota, in its currency.",
    "rep team currency",
    Scope.LIVE,
)
REP_WORKING = _spec(
    "rep_working",
    Kind.GAUGE,
    "1 while the rep's profile in force says they are working (their hours, in their timezone), else 0.",
    "rep team",
    Scope.LIVE,
)
WON_BY_DEAL_TYPE = _spec(
    "deals_won_by_deal_type",
    Kind.GAUGE,
    "Deals won in the current period by deal type and currency (average deal size's denominator).",
    "team deal_type period currency",
    Scope.PERIOD,
    _WON,
    periods=DEAL_PERIODS,
)
WON_AMOUNT_BY_DEAL_TYPE = _spec(
    "won_amount_by_deal_type",
    Kind.GAUGE,
    "Amount won in the current period by deal type.",
    "team deal_type period currency",
    Scope.PERIOD,
    _WON_AMOUNT,
    periods=DEAL_PERIODS,
)

# --- engine health ---------------------------------------------------------------------------

EVENTS_PROCESSED = _spec(
    "events_processed", Kind.COUNTER, "Input messages consumed (valid, rejected and duplicate).", "topic"
)
EVENT_TIME_LAG = _spec(
    "event_time_lag_seconds",
    Kind.GAUGE,
    "Now minus the latest occurred_at consumed from a deal topic (0 when ahead).",
    "topic",
)
LAST_EVENT_TIMESTAMP = _spec(
    "last_event_timestamp_seconds", Kind.GAUGE, "The latest occurred_at consumed from a deal topic.", "topic"
)
TABLE_KEYS = _spec("table_keys", Kind.GAUGE, "Records in a table, for actively owned partitions.", "table")
TABLE_BYTES = _spec("table_bytes", Kind.GAUGE, "Bytes of a table's records, for actively owned partitions.", "table")
BUILD_INFO = _spec(
    "build_info",
    Kind.GAUGE,
    "LeadPulse version and the core's build: mypyc or python (always 1).",
    "version build",
)
DEAD_LETTERS_WAITING = _spec(
    "dead_letters_waiting",
    Kind.GAUGE,
    "Dead letters not yet taken by the dead-letter topic (retried; no input offset after them is committed).",
    "",
)
LABEL_VALUES_FOLDED = _spec(
    "label_values_folded",
    Kind.GAUGE,
    "Distinct values this worker exports as `other` since it started, by label: reps, teams and currencies"
    " beyond LEADPULSE_MAX_*_LABELS; sources and stages not well known; lost reasons beyond the top 20.",
    "label",
)

CATALOG: tuple[MetricSpec, ...] = (
    CALLS,
    EMAILS,
    MEETINGS,
    DEALS_CREATED,
    LEADS_AWAITING,
    OLDEST_AWAITING,
    SLA_BREACHED,
    FIRST_RESPONSE,
    FIRST_RESPONSE_BY_SOURCE,
    PIPELINE_DEALS,
    PIPELINE_AMOUNT,
    WEIGHTED_PIPELINE,
    FORECAST_WEIGHTED,
    DEALS_WON,
    WON_AMOUNT,
    DEALS_LOST,
    EVENTS_REJECTED,
    EVENTS_DUPLICATE,
    ACTIVITIES,
    ACTIVITY_TARGET,
    ACTIVITY_OUTCOMES,
    CALL_HANDLE_SECONDS,
    LEADS_CREATED,
    LEADS_QUALIFIED,
    WON_AMOUNT_PREVIOUS,
    BUSINESS_RESPONSE,
    RE_RESPONSE,
    SALES_CYCLE,
    STAGE_DWELL,
    STAGE_TRANSITIONS,
    CLOSED_AFTER_PROPOSAL,
    LOST_BY_REASON,
    DEALS_SLIPPED,
    SLIPPED_AMOUNT,
    MONTHLY_QUOTA,
    REP_WORKING,
    WON_BY_DEAL_TYPE,
    WON_AMOUNT_BY_DEAL_TYPE,
    EVENTS_PROCESSED,
    EVENT_TIME_LAG,
    LAST_EVENT_TIMESTAMP,
    TABLE_KEYS,
    TABLE_BYTES,
    LABEL_VALUES_FOLDED,
    DEAD_LETTERS_WAITING,
    BUILD_INFO,
)
