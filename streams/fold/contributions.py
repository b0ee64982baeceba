"""What a deal adds to the aggregates: a pure function of its state.

Every aggregate LeadPulse exports or serves is a sum of contributions over deals, keyed by
``(scope, family, labels)`` with an additive ``(count, micro_total)`` value. A scope is a
calendar period, ``LIFETIME`` (counters since the beginning) or ``LIVE`` (state now).

Activity contributions depend on the activity alone, so a new activity is simply added.
Deal-level contributions (creation, first response, close, pipeline, awaiting) depend on the
whole state, so a change replaces the old ones: :func:`diff` gives what to add and retract.
A late event that moves a first response therefore takes the old response out of its period
and puts the new one in.

Teams are left as the event gave them (``None`` = "the rep's profile team"); they are resolved
against rep profiles when read, so a profile arriving after the events still applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from streams.fold import deals
from streams.fold.deals import DealState
from streams.fold.facts import MICRO, ActivityFact, DealTopic
from streams.periods import Calendar

LIFETIME = ("lifetime", "")
LIVE = ("live", "")

# SPEC §3: first_response_seconds buckets (upper bounds, inclusive); the last bucket is +Inf.
FIRST_RESPONSE_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800)


class Family(StrEnum):
    """An aggregate and the meaning of its labels and of its ``micro_total``."""

    CALLS = "calls"  # rep, team, direction, outcome; total = talk + wrap-up seconds
    EMAILS = "emails"  # rep, team, action, personalized ("true"/"false")
    MEETINGS = "meetings"  # rep, team, action
    CREATED = "created"  # rep, team, source (owner at creation)
    FIRST_RESPONSE = "first_response"  # rep, team, source, bucket index; total = seconds
    WON = "won"  # rep, team, currency; total = amount
    LOST = "lost"  # rep, team
    PIPELINE = "pipeline"  # rep, team, stage, currency; total = amount (LIVE scope)
    DUPLICATES = "duplicates"  # topic (LIFETIME scope)


Scope = tuple[str, str]
Key = tuple[Scope, Family, tuple[str | None, ...]]
Value = tuple[int, int]


@dataclass(frozen=True, slots=True)
class AwaitingLead:
    """A deal created, not yet touched and not closed: live, its age is read at scrape time."""

    rep: str
    team: str | None
    created_at: float
    source: str | None


@dataclass(frozen=True, slots=True)
class DealContributions:
    sums: dict[Key, Value]
    awaiting: AwaitingLead | None


def bucket_index(seconds: float) -> int:
    """Index of the first bucket whose upper bound is >= seconds (len(buckets) for +Inf)."""
    for index, bound in enumerate(FIRST_RESPONSE_BUCKETS):
        if seconds <= bound:
            return index
    return len(FIRST_RESPONSE_BUCKETS)


def activity_contributions(fact: ActivityFact, calendar: Calendar) -> Iterator[tuple[Key, Value]]:
    if fact.kind == "call":
        family, labels, total = Family.CALLS, (fact.rep, fact.team, fact.action, fact.outcome), fact.handle_micro
    elif fact.kind == "email":
        family, labels, total = Family.EMAILS, (fact.rep, fact.team, fact.action, _flag(fact.personalized)), 0
    else:
        family, labels, total = Family.MEETINGS, (fact.rep, fact.team, fact.action), 0
    yield (LIFETIME, family, labels), (1, total)
    for period in calendar.periods_of(fact.at):
        yield (period, family, labels), (1, total)


def duplicate_contributions(duplicates_by_topic: Iterable[int]) -> Iterator[tuple[Key, Value]]:
    for topic, count in zip(DealTopic, duplicates_by_topic, strict=True):
        if count:
            yield (LIFETIME, Family.DUPLICATES, (topic.name.lower(),)), (count, 0)


def deal_contributions(state: DealState, calendar: Calendar) -> DealContributions:
    """The deal-level contributions of a state (not its activities or duplicates)."""
    sums: dict[Key, Value] = {}
    created = deals.created_at(state)
    if created is None:
        return DealContributions(sums, None)
    source = deals.source(state)
    origin = state.stages[0]
    _add(sums, (LIFETIME, Family.CREATED, (origin.rep, origin.team, source)), 1, 0)
    for period in calendar.periods_of(created):
        _add(sums, (period, Family.CREATED, (origin.rep, origin.team, source)), 1, 0)

    touch = deals.first_response(state)
    if touch is not None:
        owner = deals.stage_at(state, touch.at)
        assert owner is not None
        seconds_micro = round((touch.at - created) * MICRO)
        labels = (owner.rep, owner.team, source, str(bucket_index(seconds_micro / MICRO)))
        for period in calendar.periods_of(touch.at):
            _add(sums, (period, Family.FIRST_RESPONSE, labels), 1, seconds_micro)

    latest = state.stages[-1]
    amount_micro, currency = deals.amount(state)
    closing = deals.closing_stage(state)
    awaiting = None
    if closing is not None:
        for period in calendar.periods_of(closing.at):
            if closing.stage == "won":
                _add(sums, (period, Family.WON, (closing.rep, closing.team, currency)), 1, amount_micro or 0)
            else:
                _add(sums, (period, Family.LOST, (closing.rep, closing.team)), 1, 0)
    else:
        pipeline_labels = (latest.rep, latest.team, latest.stage, currency)
        _add(sums, (LIVE, Family.PIPELINE, pipeline_labels), 1, amount_micro or 0)
        if touch is None:
            awaiting = AwaitingLead(rep=latest.rep, team=latest.team, created_at=created, source=source)
    return DealContributions(sums, awaiting)


def full_contributions(state: DealState, calendar: Calendar) -> DealContributions:
    """Everything a deal contributes: used to rebuild aggregates from the table."""
    result = deal_contributions(state, calendar)
    for fact in state.activities:
        for key, (count, total) in activity_contributions(fact, calendar):
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
