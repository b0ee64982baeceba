"""What a deal adds to the aggregates: a pure function of its state and the rep profiles.

Every aggregate LeadPulse exports or serves is a sum of contributions over deals, keyed by
``(scope, family, labels)`` with an additive ``(count, micro_total)`` value. A scope is a
calendar period, ``LIFETIME`` (counters since the beginning) or ``LIVE`` (state now).

Activity contributions depend on the activity alone, so a new activity is simply added.
Deal-level contributions (creation, responses, stages, close, pipeline, awaiting) depend on the
whole state, so a change retracts the old ones and adds the new: :func:`changed_observations`
gives what moves, for the rules whose inputs the change moved.
A late event that moves a first response therefore takes the old response out of its period
and puts the new one in.

Teams are resolved here, at the moment that matters (SPEC §2: the activity, creation, the
touch, the close), against the profile in force then; the rollups recompute a deal's
contributions when a profile of one of its reps changes, so a late profile still applies.
Live state (pipeline, slipping deals, leads awaiting) keeps ``None`` for "the rep's profile
team": its moment is *now*, so it is resolved when read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from streams.fold import deals
from streams.fold.deals import DealState
from streams.fold.facts import MICRO, ActivityFact, DealTopic, StageFact
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

    __hash__ = str.__hash__  # as PeriodKind's (streams/fold/periods.py)

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


def activity_cell(fact: ActivityFact, ctx: FoldContext) -> tuple[Family, Labels, int]:
    """An activity's family, labels and micro_total: it counts once in ``LIFETIME`` and once in
    each calendar period containing it."""
    team = team_at(ctx.profiles, fact.rep, fact.team, fact.at)
    if fact.kind == "call":
        return Family.CALLS, (fact.rep, team, fact.action, fact.outcome), fact.handle_micro
    if fact.kind == "email":
        return Family.EMAILS, (fact.rep, team, fact.action, _flag(fact.personalized)), 0
    return Family.MEETINGS, (fact.rep, team, fact.action), 0


def activity_observations(fact: ActivityFact, ctx: FoldContext) -> tuple[Observation, Observation]:
    """An activity counts once in ``LIFETIME`` and once in each calendar period containing it."""
    family, labels, total = activity_cell(fact, ctx)
    return (fact.at, LIFETIME, family, labels, total), (fact.at, None, family, labels, total)


# The duplicates counter of each deal topic, in DealTopic's order (iterating an Enum costs microseconds).
_DUPLICATES: tuple[Observation, ...] = tuple(
    (0.0, LIFETIME, Family.DUPLICATES, (topic.name.lower(),), 0) for topic in DealTopic
)


def duplicate_observations(duplicates_by_topic: Iterable[int]) -> Iterator[tuple[Observation, int]]:
    """Duplicates dropped, per topic: lifetime counters, each with how many times it counts."""
    for observation, count in zip(_DUPLICATES, duplicates_by_topic, strict=True):
        if count:
            yield observation, count


Labels = tuple[str | None, ...]
# One count of a deal-level aggregate: (moment, scope, family, labels, micro_total). It counts in
# ``scope`` when one is given, else in the calendar periods containing ``moment``. A deal has about
# ten of them for some thirty cells, and two states of a deal are compared observation by observation.
Observation = tuple[float, Scope | None, Family, Labels, int]


class DealView:
    """The derived values of one deal state (the SPEC §2 rules of :mod:`streams.fold.deals`),
    each computed once and shared by the contributions, the output plan and the lead response."""

    __slots__ = ("_runs", "_waits", "closing", "created", "latest", "origin", "source", "state", "touch")

    def __init__(self, state: DealState) -> None:
        self.state = state
        stages = state.stages
        self.origin: StageFact | None = stages[0] if stages else None
        self.latest: StageFact | None = stages[-1] if stages else None
        self.created: float | None = stages[0].at if stages else None
        self.source: str | None = deals.source(state)
        self.closing: StageFact | None = deals.closing_stage(state)
        self.touch: ActivityFact | None = deals.first_response(state)
        self._waits: list[tuple[float, ActivityFact, StageFact]] | None = None
        self._runs: list[StageFact] | None = None

    def owner_at(self, at: float) -> StageFact:
        """The stage event in force at ``at`` (its rep owns the deal then); only for a created deal."""
        owner = deals.stage_at(self.state, at)
        assert owner is not None
        return owner

    def runs(self) -> list[StageFact]:
        """:func:`streams.fold.deals.stage_runs`: the moments the deal entered a stage."""
        if self._runs is None:
            self._runs = deals.stage_runs(self.state)
        return self._runs

    def waits(self) -> list[tuple[float, ActivityFact, StageFact]]:
        """The re-response waits as (wait start, closing touch, stage event in force at the touch)."""
        if self._waits is None:
            self._waits = [(opened, reply, self.owner_at(reply.at)) for opened, reply in deals.re_responses(self.state)]
        return self._waits


def _creation_inputs(view: DealView) -> tuple:
    return (view.origin, view.source)


def _creation(view: DealView, ctx: FoldContext, out: list[Observation]) -> None:
    origin = view.origin
    assert origin is not None
    labels = (origin.rep, team_at(ctx.profiles, origin.rep, origin.team, origin.at), view.source)
    out.append((origin.at, LIFETIME, Family.CREATED, labels, 0))
    out.append((origin.at, None, Family.CREATED, labels, 0))


def _qualified_inputs(view: DealView) -> tuple:
    return (deals.first_stage_event(view.state, "qualified"), view.source)


def _qualified(view: DealView, ctx: FoldContext, out: list[Observation]) -> None:
    qualified = deals.first_stage_event(view.state, "qualified")
    if qualified is not None:
        team = team_at(ctx.profiles, qualified.rep, qualified.team, qualified.at)
        out.append((qualified.at, None, Family.QUALIFIED, (qualified.rep, team, view.source), 0))


def response_inputs(view: DealView) -> tuple:
    """What the first-response figures and the lead-response record are a function of."""
    touch = view.touch
    return (touch, None if touch is None else view.owner_at(touch.at), view.created, view.source)


def _response(view: DealView, ctx: FoldContext, out: list[Observation]) -> None:
    touch, created = view.touch, view.created
    if touch is None or created is None:
        return
    owner = view.owner_at(touch.at)
    team = team_at(ctx.profiles, owner.rep, owner.team, touch.at)
    out.append(_timed(touch.at, Family.FIRST_RESPONSE, (owner.rep, team, view.source), touch.at - created))
    business = business_response_seconds(ctx, owner.rep, created, touch.at)
    out.append(_timed(touch.at, Family.BUSINESS_RESPONSE, (owner.rep, team), business))


def _re_response_inputs(view: DealView) -> tuple:
    return tuple(view.waits())


def _re_response(view: DealView, ctx: FoldContext, out: list[Observation]) -> None:
    for opened, reply, owner in view.waits():
        team = team_at(ctx.profiles, owner.rep, owner.team, reply.at)
        out.append(_timed(reply.at, Family.RE_RESPONSE, (owner.rep, team), reply.at - opened))


def _runs(view: DealView, ctx: FoldContext, out: list[Observation], first: int = 1) -> None:
    """Each stage entered after the first, from the ``first``-th run on: a transition and the dwell
    in the stage it left (a function of the two runs alone)."""
    runs = view.runs()
    for index in range(max(first, 1), len(runs)):
        left, entered = runs[index - 1], runs[index]
        team = team_at(ctx.profiles, entered.rep, entered.team, entered.at)
        out.append((entered.at, None, Family.TRANSITIONS, (entered.rep, team, left.stage, entered.stage), 0))
        dwell = entered.at - left.at
        labels = (entered.rep, team, left.stage)
        out.append(_timed(entered.at, Family.STAGE_DWELL, labels, dwell, STAGE_DWELL_BUCKETS))


def _close_inputs(view: DealView) -> tuple:
    closing = view.closing
    if closing is None:
        return (None,)
    state = view.state
    return (closing, view.created, deals.amount(state), deals.deal_type(state), lost_reason(state), state.stages)


def _close(view: DealView, ctx: FoldContext, out: list[Observation]) -> None:
    closing, created, state = view.closing, view.created, view.state
    if closing is None or created is None:
        return
    team = team_at(ctx.profiles, closing.rep, closing.team, closing.at)
    proposal = _flag(deals.reached_before(state, "proposal", closing.at))
    if closing.stage == "won":
        amount_micro, currency = deals.amount(state)
        labels = (closing.rep, team, currency, deals.deal_type(state), proposal)
        out.append((closing.at, None, Family.WON, labels, amount_micro or 0))
        cycle = closing.at - created
        out.append(_timed(closing.at, Family.SALES_CYCLE, (closing.rep, team), cycle, SALES_CYCLE_BUCKETS))
    else:
        out.append((closing.at, None, Family.LOST, (closing.rep, team, lost_reason(state), proposal), 0))


def _live_inputs(view: DealView) -> tuple:
    if view.closing is not None:
        return (None,)
    return (view.latest, deals.amount(view.state), deals.expected_close(view.state))


def _live(view: DealView, ctx: FoldContext, out: list[Observation]) -> None:
    latest = view.latest
    if view.closing is not None or latest is None:
        return
    amount_micro, currency = deals.amount(view.state)
    total = amount_micro or 0
    out.append((0.0, LIVE, Family.PIPELINE, (latest.rep, latest.team, latest.stage, currency), total))
    expected = deals.expected_close(view.state)
    if expected is not None:
        out.append((0.0, LIVE, Family.SLIPPING, (latest.rep, latest.team, currency, expected), total))
        closing_month = (PeriodKind.MONTH, expected[:7])
        out.append((0.0, closing_month, Family.FORECAST, (latest.rep, latest.team, latest.stage, currency), total))


Inputs = Callable[[DealView], tuple]
Observe = Callable[[DealView, FoldContext, list[Observation]], None]
# The deal-level rules, each with what it reads: a change that leaves a rule's inputs as they were
# (the same facts, the same derived values) leaves its observations too, and is skipped. The last
# field says whether the rule reads the deal's stage events only (then activities cannot move it).
# Besides these, :func:`_runs` (transitions and dwells) is diffed run by run: see changed_observations.
RULES: tuple[tuple[Inputs, Observe, bool], ...] = (
    (_creation_inputs, _creation, True),
    (_qualified_inputs, _qualified, True),
    (response_inputs, _response, False),
    (_re_response_inputs, _re_response, False),
    (_close_inputs, _close, True),
    (_live_inputs, _live, True),
)


def deal_observations(view: DealView, ctx: FoldContext) -> list[Observation]:
    """Every deal-level observation of a state (none before its first stage event)."""
    out: list[Observation] = []
    if view.created is not None:
        for _inputs, observe, _stages_only in RULES:
            observe(view, ctx, out)
        _runs(view, ctx, out)
    return out


def changed_observations(
    old: DealView, new: DealView, ctx: FoldContext, stages_changed: bool = True
) -> dict[Observation, int]:
    """What moves between two states of a deal: each observation with how many times to add it
    (negative: retract), only for the rules whose inputs changed (every rule at a deal's first
    stage event)."""
    net: dict[Observation, int] = {}
    created = old.created is None
    for inputs, observe, stages_only in RULES:
        if not created and ((stages_only and not stages_changed) or inputs(old) == inputs(new)):
            continue
        for view, sign in ((new, 1), (old, -1)):
            if view.created is not None:
                found: list[Observation] = []
                observe(view, ctx, found)
                _count(net, found, sign)
    if created or stages_changed:
        # A transition is a function of its two runs: those both states share observe alike. A new
        # stage event usually enters one stage at the end: one transition instead of all of them twice.
        first = _shared_prefix(old.runs(), new.runs()) if not created else 0
        for view, sign in ((new, 1), (old, -1)):
            if view.created is not None:
                found = []
                _runs(view, ctx, found, first)
                _count(net, found, sign)
    return net


def _count(net: dict[Observation, int], found: list[Observation], sign: int) -> None:
    for observation in found:
        net[observation] = net.get(observation, 0) + sign


def _shared_prefix(old: list[StageFact], new: list[StageFact]) -> int:
    """How many leading runs two states share (the same facts: a fold keeps the ones it had)."""
    shared = 0
    for before, after in zip(old, new, strict=False):
        if before is not after and before != after:
            break
        shared += 1
    return shared


def lead_moved(old: DealView, new: DealView, stages_changed: bool) -> bool:
    """Whether the stage events or the first response moved: the awaiting lead and what the deal
    owes other services (SPEC §4) are functions of these alone (the passing of time aside)."""
    return stages_changed or old.touch is not new.touch


def awaiting_lead(view: DealView, ctx: FoldContext) -> AwaitingLead | None:
    """The lead awaiting its first response (created, untouched, not closed), else None."""
    latest, created = view.latest, view.created
    if latest is None or created is None or view.closing is not None or view.touch is not None:
        return None
    profile = profile_at(ctx.profiles, latest.rep, created)
    breach_at = ctx.sla.crossings(created, view.source, profile)[0]
    return AwaitingLead(latest.rep, latest.team, created, view.source, breach_at)


AddCell = Callable[[Scope, Family, Labels, int, int], None]  # (scope, family, labels, count, micro_total)


def expand(calendar: Calendar, moved: Iterable[tuple[Observation, int]], add: AddCell) -> None:
    """Observations as cells: each ``times`` times (negative: retracted), in its scope or in the
    calendar periods containing its moment."""
    for (moment, scope, family, labels, total), times in moved:
        if not times:
            continue
        if scope is not None:
            add(scope, family, labels, times, total * times)
        else:
            for period in calendar.periods_of(moment):
                add(period, family, labels, times, total * times)


def _timed(
    moment: float, family: Family, labels: Labels, seconds: float, bounds: tuple[int, ...] = FIRST_RESPONSE_BUCKETS
) -> Observation:
    """A histogram observation: the bucket index is the last label, the seconds the total."""
    return (moment, None, family, (*labels, str(bucket_index(seconds, bounds))), round(seconds * MICRO))


def deal_contributions(state: DealState, ctx: FoldContext, view: DealView | None = None) -> DealContributions:
    """The deal-level contributions of a state (not its activities or duplicates), as cells."""
    view = view or DealView(state)
    observed = ((observation, 1) for observation in deal_observations(view, ctx))
    return DealContributions(_as_cells(ctx.calendar, observed), awaiting_lead(view, ctx))


def _as_cells(calendar: Calendar, observed: Iterable[tuple[Observation, int]]) -> dict[Key, Value]:
    sums: dict[Key, Value] = {}

    def add(scope: Scope, family: Family, labels: Labels, count: int, total: int) -> None:
        _add(sums, (scope, family, labels), count, total)

    expand(calendar, observed, add)
    return sums


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


def all_observations(
    state: DealState, ctx: FoldContext, view: DealView | None = None
) -> Iterator[tuple[Observation, int]]:
    """Everything a deal contributes, as observations with how many times each counts: its
    deal-level observations, its activities and its duplicates. The aggregates are their sum."""
    for observation in deal_observations(view or DealView(state), ctx):
        yield observation, 1
    for fact in state.activities:
        lifetime, periods = activity_observations(fact, ctx)
        yield lifetime, 1
        yield periods, 1
    yield from duplicate_observations(state.duplicates)


def full_contributions(state: DealState, ctx: FoldContext) -> DealContributions:
    """Everything a deal contributes, as cells: what the aggregates of a partition sum over its deals
    (the rollups count the same observations per quarter hour; tests hold the two equal)."""
    view = DealView(state)
    return DealContributions(_as_cells(ctx.calendar, all_observations(state, ctx, view)), awaiting_lead(view, ctx))


def _add(sums: dict[Key, Value], key: Key, count: int, total: int) -> None:
    old = sums.get(key)
    sums[key] = (count, total) if old is None else (old[0] + count, old[1] + total)


def _flag(value: bool) -> str:
    return "true" if value else "false"
