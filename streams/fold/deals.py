"""A deal's state as a fold of its events by event time (SPEC §2), as plain functions.

The state keeps every fact of the deal, sorted by ``(occurred_at, event_id)``, so any arrival
order of the same events gives the same state, and every SPEC §2 rule is a function of it.

Two kinds of repeat are told apart. A *redelivery* (Kafka hands over a message again after a
crash or rebalance) has an offset at or below the deal's watermark for its topic-partition: it
is a no-op. A *duplicate* (a new message whose ``event_id`` the deal already has on the same
topic) is counted per topic and changes nothing else. Ids are compared per topic, so a CRM that
numbers calls and emails separately cannot make one hide the other. Because a deal's facts,
watermarks and duplicate counts live in one record, each batch's effect on a deal is one atomic
table write: at-least-once delivery can neither lose nor double-count an event.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

from schemas.events import DEFAULT_DEAL_TYPE, TERMINAL_STAGES
from streams.fold.facts import ActivityFact, DealTopic, Fact, StageFact

_NO_DUPLICATES = (0,) * len(DealTopic)
Watermark = tuple[int, int, int]  # (DealTopic, partition, highest offset applied)


@dataclass(init=False, unsafe_hash=True)  # immutable by convention (streams/fold/facts.py says why)
class DealState:
    deal_id: str
    stages: tuple[StageFact, ...]
    activities: tuple[ActivityFact, ...]
    offsets: tuple[Watermark, ...]  # sorted; usually one partition per topic
    duplicates: tuple[int, ...]  # repeated event ids seen, per DealTopic
    # What was published about the deal (streams/fold/outputs.py): alert keys already sent, and
    # the revision and fingerprint of the last lead-response record. Not facts: the fold keeps them.
    alerts: tuple[str, ...]
    response: tuple[int, str] | None

    def __init__(
        self,
        deal_id: str,
        stages: tuple[StageFact, ...] = (),
        activities: tuple[ActivityFact, ...] = (),
        offsets: tuple[Watermark, ...] = (),
        duplicates: tuple[int, ...] = _NO_DUPLICATES,
        alerts: tuple[str, ...] = (),
        response: tuple[int, str] | None = None,
    ) -> None:
        self.deal_id = deal_id
        self.stages = stages
        self.activities = activities
        self.offsets = offsets
        self.duplicates = duplicates
        self.alerts = alerts
        self.response = response

    def published(self, alerts: tuple[str, ...], response: tuple[int, str] | None) -> DealState:
        """This state with what was published about the deal recorded."""
        return DealState(self.deal_id, self.stages, self.activities, self.offsets, self.duplicates, alerts, response)


@dataclass(init=False, unsafe_hash=True)
class Delivery:
    """One message of a deal-scoped topic, already validated into a fact."""

    fact: Fact
    topic: DealTopic
    offset: int
    partition: int

    def __init__(self, fact: Fact, topic: DealTopic, offset: int, partition: int = 0) -> None:
        self.fact = fact
        self.topic = topic
        self.offset = offset
        self.partition = partition


_TOPIC_OF_ACTIVITY = {"call": DealTopic.CALLS, "email": DealTopic.EMAILS, "meeting": DealTopic.MEETINGS}


def topic_of(fact: Fact) -> DealTopic:
    return DealTopic.DEAL_STAGES if isinstance(fact, StageFact) else _TOPIC_OF_ACTIVITY[fact.kind]


@dataclass(init=False, unsafe_hash=True)
class FoldResult:
    state: DealState
    changed: bool  # anything to write: new facts, duplicates or watermarks
    added_activities: tuple[ActivityFact, ...]
    added_duplicates: tuple[int, ...]
    stages_changed: bool

    def __init__(
        self,
        state: DealState,
        changed: bool = False,
        added_activities: tuple[ActivityFact, ...] = (),
        added_duplicates: tuple[int, ...] = _NO_DUPLICATES,
        stages_changed: bool = False,
    ) -> None:
        self.state = state
        self.changed = changed
        self.added_activities = added_activities
        self.added_duplicates = added_duplicates
        self.stages_changed = stages_changed

    @property
    def moves_outputs(self) -> bool:
        """Whether what the deal owes other services (SPEC §4) may have changed: its stages
        (creation, owner, closing, expected close) or its first response (touches). Other
        activities change neither; the passing of time is the output timer's job."""
        return self.stages_changed or any(fact.is_touch for fact in self.added_activities)

    @property
    def moves_deal_level(self) -> bool:
        """Whether the deal-level contributions may have changed: stages, first response and
        re-responses (touches and inbound activities). Other activities add only their own."""
        return self.moves_outputs or any(fact.is_inbound for fact in self.added_activities)


def fold(state: DealState, deliveries: Iterable[Delivery]) -> FoldResult:
    """Apply a deal's deliveries (in offset order per topic) to its state."""
    stages = list(state.stages)
    activities = list(state.activities)
    offsets = {(topic, partition): offset for topic, partition, offset in state.offsets}
    duplicates = list(state.duplicates)
    facts: list[Fact] = [*stages, *activities]
    known_ids = {(topic_of(fact), fact.event_id) for fact in facts}
    added_activities: list[ActivityFact] = []
    stages_changed = False
    for delivery in deliveries:
        topic, where = delivery.topic, (delivery.topic, delivery.partition)
        if delivery.offset <= offsets.get(where, -1):
            continue  # redelivered: already in this state
        offsets[where] = delivery.offset
        fact = delivery.fact
        if (topic, fact.event_id) in known_ids:
            duplicates[topic] += 1
            continue
        known_ids.add((topic, fact.event_id))
        if isinstance(fact, StageFact):
            bisect.insort(stages, fact, key=_order)
            stages_changed = True
        else:
            bisect.insort(activities, fact, key=_order)
            added_activities.append(fact)
    watermarks = tuple(sorted((topic, partition, offset) for (topic, partition), offset in offsets.items()))
    if watermarks == state.offsets:
        return FoldResult(state=state)
    new_state = DealState(
        state.deal_id, tuple(stages), tuple(activities), watermarks, tuple(duplicates), state.alerts, state.response
    )
    added_duplicates = tuple(now - then for now, then in zip(duplicates, state.duplicates, strict=True))
    return FoldResult(
        state=new_state,
        changed=True,
        added_activities=tuple(added_activities),
        added_duplicates=added_duplicates,
        stages_changed=stages_changed,
    )


def _order(fact: Fact) -> tuple[float, str]:
    return (fact.at, fact.event_id)


# --- SPEC §2 rules, each a function of the state ------------------------------------------


def created_at(state: DealState) -> float | None:
    """Earliest ``occurred_at`` among the deal's stage events."""
    return state.stages[0].at if state.stages else None


def current_stage(state: DealState) -> StageFact | None:
    """The latest stage event (ties: greatest ``event_id``)."""
    return state.stages[-1] if state.stages else None


def is_terminal(state: DealState) -> bool:
    latest = current_stage(state)
    return latest is not None and latest.stage in TERMINAL_STAGES


def stage_at(state: DealState, at: float) -> StageFact | None:
    """The stage event in force at ``at``: the latest at or before it, else the earliest.

    Its ``rep`` is the deal's owner at ``at`` and its ``team`` the deal's team then.
    """
    if not state.stages:
        return None
    index = bisect.bisect_right(state.stages, at, key=lambda fact: fact.at)
    return state.stages[index - 1] if index else state.stages[0]


def source(state: DealState) -> str | None:
    """``source`` of the earliest stage event that carries one."""
    return next((fact.source for fact in state.stages if fact.source is not None), None)


def amount(state: DealState) -> tuple[int | None, str]:
    """Latest non-empty amount (micro-units) with the currency it was given in."""
    for fact in reversed(state.stages):
        if fact.amount_micro is not None:
            return fact.amount_micro, fact.currency
    return None, "USD"


def expected_close(state: DealState) -> str | None:
    return next((fact.expected_close for fact in reversed(state.stages) if fact.expected_close), None)


def first_response(state: DealState) -> ActivityFact | None:
    """The earliest touch at or after ``created_at``; earlier touches are prospecting."""
    start = created_at(state)
    if start is None:
        return None
    index = bisect.bisect_left(state.activities, start, key=lambda fact: fact.at)
    return next((fact for fact in state.activities[index:] if fact.is_touch), None)


def closing_stage(state: DealState) -> StageFact | None:
    """The stage event that made a closed deal terminal, else None.

    That is the earliest event of the final run of events carrying the current terminal stage:
    ``won, won`` closes at the first ``won``; a deal reopened after ``lost`` and later won
    closes when it was won.
    """
    if not is_terminal(state):
        return None
    final = state.stages[-1].stage
    index = len(state.stages) - 1
    while index > 0 and state.stages[index - 1].stage == final:
        index -= 1
    return state.stages[index]


def deal_type(state: DealState) -> str:
    """Latest ``deal_type`` given, else ``new_business``."""
    return next((fact.deal_type for fact in reversed(state.stages) if fact.deal_type), DEFAULT_DEAL_TYPE)


def stage_runs(state: DealState) -> list[StageFact]:
    """The first event of each run of consecutive stage events with the same stage: the moments
    the deal entered a stage (a repeated stage event, e.g. with a new amount, is no new stage)."""
    runs: list[StageFact] = []
    for fact in state.stages:
        if not runs or runs[-1].stage != fact.stage:
            runs.append(fact)
    return runs


def first_stage_event(state: DealState, stage: str) -> StageFact | None:
    return next((fact for fact in state.stages if fact.stage == stage), None)


def reached_before(state: DealState, stage: str, at: float) -> bool:
    """Whether the deal had a ``stage`` event at or before ``at``."""
    return any(fact.stage == stage and fact.at <= at for fact in state.stages)


def re_responses(state: DealState) -> list[tuple[float, ActivityFact]]:
    """SPEC §2 re-response waits, as (wait start, closing touch).

    After the first response, an inbound activity (email received, inbound call) opens a wait,
    the next touch closes it, and the earliest unanswered inbound starts the clock. Inbound
    activity before the first response is part of the first-response wait.
    """
    touch = first_response(state)
    if touch is None:
        return []
    waits: list[tuple[float, ActivityFact]] = []
    opened: float | None = None
    index = bisect.bisect_right(state.activities, touch.order, key=lambda fact: fact.order)
    for fact in state.activities[index:]:
        if fact.is_inbound:
            if opened is None:
                opened = fact.at
        elif fact.is_touch and opened is not None:
            waits.append((opened, fact))
            opened = None
    return waits
