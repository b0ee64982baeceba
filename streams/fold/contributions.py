"""What a deal adds to the aggregates: a pure function of its state and the rep profiles.

Every aggregate LeadPulse exports or serves is a sum of contributions over deals, keyed by
``(scope, family, labels)`` with an additive ``(count, micro_total)`` value. A scope is a
calendar period, ``LIFETIME`` (counters since the beginning) or ``LIVE`` (state now).

Activity contributions depend on the activity alone, so a new activity is simply added.
Deal-level contributions (creation, responses, stages, close, pipeline, awaiting) depend on the
whole state, so a change replaces the old ones: :func:`diff` gives what to add and retract.
A late event that moves a first response therefore takes the old response out of its period
and puts the new one in.

Teams are resolved here, at the moment that matters (SPEC §2: the activity, creation, the
touch, the close), against the profile in force then; the rollups recompute a deal's
contributions when a profile of one of its reps changes, so a late profile still applies.
Live state (pipeline, slipping deals, leads awaiting) keeps ``None`` for "the rep's profile
team": its moment is *now*, so it is resolved when read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise

from streams.fold import deals
from streams.fold.deals import DealState
from streams.fold.facts import MICRO, ActivityFact, DealTopic
from streams.fold.periods import Calendar, PeriodKind
from streams.fold.profiles import NoProfiles, ProfileLookup, profile_at, team_at
from streams.fold.sla import SlaPolicy
from streams.fold.worktime import business_seconds

LIFETIME = ("lifetime", "")
LIVE = ("live", "")

# Histogram bucket upper bounds in seconds (inclusive); the last bucket is +Inf.
FIRST_RESPONSE_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800)  # SPEC §3
_DAY = 86400
SALES_CYCLE_BUCKETS = tuple(days * _DAY for days in (1, 3, 7, 14, 30, 60, 90, 180, 365))  # SPEC §3, in days
STAGE_DWELL_BUCKETS = (3600, _DAY, 3 * _DAY, 7 * _DAY, 30 * _DAY, 90 * _DAY)


class Family(StrEnum):
    """An aggregate and the meaning of its labels and of its ``micro_total``.

    ``team`` is resolved (a string) except in LIVE families, where ``None`` means "the rep's
    profile team now". Sources, stages and reasons are kept as the CRM sent them; the exporter
    maps them onto closed label sets.
    """

    CALLS = "calls"  # rep, team, direction, outcome; total = talk + wrap-up seconds
    EMAILS = "emails"  # rep, team, action, personalized ("true"/"false")
    MEETINGS = "meetings"  # rep, team, action
    CREATED = "created"  # rep, team, source (owner and team at creation)
    QUALIFIED = "qualified"  # rep, team, source (at the deal's first ``qualified`` stage event)
    FIRST_RESPONSE = "first_response"  # rep, team, source, bucket; total = seconds
    BUSINESS_RESPONSE = "business_response"  # rep, team, bucket; total = business seconds
    RE_RESPONSE = "re_response"  # rep, team, bucket; total = seconds (owner and team at the touch)
    WON = "won"  # rep, team, currency, deal_type, reached_proposal; total = amount
    LOST = "lost"  # rep, team, lost_reason, reached_proposal
    SALES_CYCLE = "sales_cycle"  # rep, team, bucket; total = seconds (won deals)
    TRANSITIONS = "transitions"  # rep, team, from_stage, to_stage (owner and team on entering to_stage)
    STAGE_DWELL = "stage_dwell"  # rep, team, stage, bucket; total = seconds in the stage left
    PIPELINE = "pipeline"  # LIVE: rep, team|None, stage, currency; total = amount
    SLIPPING = "slipping"  # LIVE: rep, team|None, currency, expected_close; total = amount
    # Open deals under the month of their expected close date (live state kept by period, so a
    # quarter or year sums its months): rep, team|None, stage, currency; total = amount
    FORECAST = "forecast"
    DUPLICATES = "duplicates"  # LIFETIME: topic


Scope = tuple[str, str]
Key = tuple[Scope, Family, tuple[str | None, ...]]
Value = tuple[int, int]


@dataclass(frozen=True, slots=True)
class AwaitingLead:
    """A deal created, not yet touched and not closed: live, its age is read at scrape time."""

    rep: str
    team: str | None  # None: the rep's profile team now
    created_at: float
    source: str | None
    breach_at: float  # when it passes its SLA (the first step)


@dataclass(frozen=True, slots=True)
class DealContributions:
    sums: dict[Key, Value]
    awaiting: AwaitingLead | None


@dataclass(frozen=True)
class FoldContext:
    """What contributions depend on besides the deal: calendar, rep profiles, SLA policy."""

    calendar: Calendar
    profiles: ProfileLookup = field(default_factory=NoProfiles)
    sla: SlaPolicy = field(default_factory=SlaPolicy)


def bucket_index(seconds: float, bounds: tuple[int, ...] = FIRST_RESPONSE_BUCKETS) -> int:
    """Index of the first bucket whose upper bound is >= seconds (len(bounds) for +Inf)."""
    for index, bound in enumerate(bounds):
        if seconds <= bound:
            return index
    return len(bounds)


def activity_contributions(fact: ActivityFact, ctx: FoldContext) -> Iterator[tuple[Key, Value]]:
    team = team_at(ctx.profiles, fact.rep, fact.team, fact.at)
    labels: tuple[str, ...]
    if fact.kind == "call":
        family, labels, total = Family.CALLS, (fact.rep, team, fact.action, fact.outcome), fact.handle_micro
    elif fact.kind == "email":
        family, labels, total = Family.EMAILS, (fact.rep, team, fact.action, _flag(fact.personalized)), 0
    else:
        family, labels, total = Family.MEETINGS, (fact.rep, team, fact.action), 0
    yield (LIFETIME, family, labels), (1, total)
    for period in ctx.calendar.periods_of(fact.at):
        yield (period, family, labels), (1, total)


def duplicate_contributions(duplicates_by_topic: Iterable[int]) -> Iterator[tuple[Key, Value]]:
    for topic, count in zip(DealTopic, duplicates_by_topic, strict=True):
        if count:
            yield (LIFETIME, Family.DUPLICATES, (topic.name.lower(),)), (count, 0)


class _Sums:
    """Contributions being collected for one deal."""

    def __init__(self, calendar: Calendar) -> None:
        self.calendar = calendar
        self.sums: dict[Key, Value] = {}

    def at(self, moment: float, family: Family, labels: tuple[str | None, ...], total: int = 0) -> None:
        """Add to the four calendar periods containing ``moment``."""
        for period in self.calendar.periods_of(moment):
            _add(self.sums, (period, family, labels), 1, total)

    def timed(
        self, moment: float, family: Family, labels: tuple[str | None, ...], seconds: float, bounds: tuple[int, ...]
    ) -> None:
        """A histogram observation: the bucket index is the last label, the seconds the total."""
        self.at(moment, family, (*labels, str(bucket_index(seconds, bounds))), round(seconds * MICRO))


def deal_contributions(state: DealState, ctx: FoldContext) -> DealContributions:
    """The deal-level contributions of a state (not its activities or duplicates)."""
    created = deals.created_at(state)
    out = _Sums(ctx.calendar)
    if created is None:
        return DealContributions(out.sums, None)
    profiles = ctx.profiles
    source = deals.source(state)
    origin = state.stages[0]
    creation_labels = (origin.rep, team_at(profiles, origin.rep, origin.team, created), source)
    _add(out.sums, (LIFETIME, Family.CREATED, creation_labels), 1, 0)
    out.at(created, Family.CREATED, creation_labels)
    qualified = deals.first_stage_event(state, "qualified")
    if qualified is not None:
        team = team_at(profiles, qualified.rep, qualified.team, qualified.at)
        out.at(qualified.at, Family.QUALIFIED, (qualified.rep, team, source))

    touch = deals.first_response(state)
    if touch is not None:
        owner = deals.stage_at(state, touch.at)
        assert owner is not None
        team = team_at(profiles, owner.rep, owner.team, touch.at)
        seconds = touch.at - created
        out.timed(touch.at, Family.FIRST_RESPONSE, (owner.rep, team, source), seconds, FIRST_RESPONSE_BUCKETS)
        business = business_response_seconds(ctx, owner.rep, created, touch.at)
        out.timed(touch.at, Family.BUSINESS_RESPONSE, (owner.rep, team), business, FIRST_RESPONSE_BUCKETS)
        for opened, reply in deals.re_responses(state):
            owner = deals.stage_at(state, reply.at)
            assert owner is not None
            team = team_at(profiles, owner.rep, owner.team, reply.at)
            out.timed(reply.at, Family.RE_RESPONSE, (owner.rep, team), reply.at - opened, FIRST_RESPONSE_BUCKETS)

    runs = deals.stage_runs(state)
    for left, entered in pairwise(runs):
        team = team_at(profiles, entered.rep, entered.team, entered.at)
        out.at(entered.at, Family.TRANSITIONS, (entered.rep, team, left.stage, entered.stage))
        dwell = entered.at - left.at
        out.timed(entered.at, Family.STAGE_DWELL, (entered.rep, team, left.stage), dwell, STAGE_DWELL_BUCKETS)

    latest = state.stages[-1]
    amount_micro, currency = deals.amount(state)
    closing = deals.closing_stage(state)
    awaiting = None
    if closing is not None:
        team = team_at(profiles, closing.rep, closing.team, closing.at)
        proposal = _flag(deals.reached_before(state, "proposal", closing.at))
        if closing.stage == "won":
            labels = (closing.rep, team, currency, deals.deal_type(state), proposal)
            out.at(closing.at, Family.WON, labels, amount_micro or 0)
            cycle = closing.at - created
            out.timed(closing.at, Family.SALES_CYCLE, (closing.rep, team), cycle, SALES_CYCLE_BUCKETS)
        else:
            out.at(closing.at, Family.LOST, (closing.rep, team, lost_reason(state), proposal))
    else:
        _add(out.sums, (LIVE, Family.PIPELINE, (latest.rep, latest.team, latest.stage, currency)), 1, amount_micro or 0)
        expected = deals.expected_close(state)
        if expected is not None:
            _add(out.sums, (LIVE, Family.SLIPPING, (latest.rep, latest.team, currency, expected)), 1, amount_micro or 0)
            closing_month = (PeriodKind.MONTH, expected[:7])
            forecast = (latest.rep, latest.team, latest.stage, currency)
            _add(out.sums, (closing_month, Family.FORECAST, forecast), 1, amount_micro or 0)
        if touch is None:
            profile = profile_at(profiles, latest.rep, created)
            breach_at = ctx.sla.crossings(created, source, profile)[0]
            awaiting = AwaitingLead(latest.rep, latest.team, created, source, breach_at)
    return DealContributions(out.sums, awaiting)


def business_response_seconds(ctx: FoldContext, owner: str, created: float, touch_at: float) -> float:
    """SPEC §2: the part of the wait inside the owner's working hours (profile in force at the
    touch), the whole wait when the owner has no profile."""
    profile = profile_at(ctx.profiles, owner, touch_at)
    if profile is None:
        return touch_at - created
    return business_seconds(created, touch_at, profile.timezone, profile.hours)


def lost_reason(state: DealState) -> str | None:
    """The latest ``lost_reason`` given in the final run of ``lost`` events."""
    for fact in reversed(state.stages):
        if fact.stage != "lost":
            return None
        if fact.lost_reason:
            return fact.lost_reason
    return None


def full_contributions(state: DealState, ctx: FoldContext) -> DealContributions:
    """Everything a deal contributes: used to rebuild aggregates from the table."""
    result = deal_contributions(state, ctx)
    for fact in state.activities:
        for key, (count, total) in activity_contributions(fact, ctx):
            _add(result.sums, key, count, total)
    for key, (count, total) in duplicate_contributions(state.duplicates):
        _add(result.sums, key, count, total)
    return result


def diff(before: DealContributions, after: DealContributions) -> dict[Key, Value]:
    """What to add to the aggregates (negative values retract) to go from before to after."""
    delta: dict[Key, Value] = dict(after.sums)
    for key, (count, total) in before.sums.items():
        _add(delta, key, -count, -total)
    return {key: value for key, value in delta.items() if value != (0, 0)}


def _add(sums: dict[Key, Value], key: Key, count: int, total: int) -> None:
    old = sums.get(key)
    sums[key] = (count, total) if old is None else (old[0] + count, old[1] + total)


def _flag(value: bool) -> str:
    return "true" if value else "false"
