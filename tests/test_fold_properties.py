"""Hypothesis properties of the deal fold: arrival order, duplicates and redelivery don't matter."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.fold.contributions import FoldContext, full_contributions
from streams.fold.deals import DealState, Delivery, fold
from streams.fold.facts import ActivityFact, DealTopic, StageFact
from streams.fold.periods import Calendar
from streams.fold.profiles import Profile, merge
from streams.state.codec import decode_profile_history, encode_deal, encode_profile_history, profile_from_json
from streams.state.profile_sync import ProfileSync
from streams.state.profiles import RepDirectory
from streams.state.rollups import PartitionRollup, Rollups

CALENDAR = FoldContext(Calendar("Europe/Berlin"))
BASE = 1_700_000_000.0
REPS = ("ann", "bob", "cid")
STAGES = ("new", "contacted", "qualified", "proposal", "won", "lost", "custom_stage")

times = st.floats(min_value=BASE, max_value=BASE + 40 * 86400, allow_nan=False).map(lambda t: round(t, 3))
teams = st.one_of(st.none(), st.sampled_from(("east", "west")))


@st.composite
def stage_facts(draw: st.DrawFn, index: int) -> StageFact:
    return StageFact(
        at=draw(times),
        event_id=f"s{index}",
        stage=draw(st.sampled_from(STAGES)),
        rep=draw(st.sampled_from(REPS)),
        team=draw(teams),
        amount_micro=draw(st.one_of(st.none(), st.integers(0, 10**12))),
        currency=draw(st.sampled_from(("USD", "EUR"))),
        source=draw(st.one_of(st.none(), st.sampled_from(("inbound_demo", "referral")))),
        deal_type="new_business",
        expected_close=draw(st.one_of(st.none(), st.just("2024-01-31"))),
    )


@st.composite
def activity_facts(draw: st.DrawFn, index: int) -> tuple[ActivityFact, DealTopic]:
    kind = draw(st.sampled_from(("call", "email", "meeting")))
    if kind == "call":
        action, topic = draw(st.sampled_from(("outbound", "inbound"))), DealTopic.CALLS
        extra = {
            "outcome": draw(st.sampled_from(("connected", "no_answer"))),
            "handle_micro": draw(st.integers(0, 10**9)),
        }
    elif kind == "email":
        action, topic = draw(st.sampled_from(("sent", "received", "opened"))), DealTopic.EMAILS
        extra = {"personalized": draw(st.booleans())}
    else:
        action, topic = draw(st.sampled_from(("booked", "held"))), DealTopic.MEETINGS
        extra = {}
    fact = ActivityFact(
        at=draw(times),
        event_id=f"a{index}",
        kind=kind,
        rep=draw(st.sampled_from(REPS)),
        team=draw(teams),
        action=action,
        **extra,
    )
    return fact, topic


@st.composite
def deal_histories(draw: st.DrawFn) -> list[tuple[object, DealTopic]]:
    stages = [(draw(stage_facts(i)), DealTopic.DEAL_STAGES) for i in range(draw(st.integers(0, 6)))]
    activities = [draw(activity_facts(i)) for i in range(draw(st.integers(0, 8)))]
    return stages + activities


def with_repeats(draw: st.DrawFn, history: list[tuple[object, DealTopic]]) -> list[tuple[object, DealTopic]]:
    """The messages a history arrives as: each event, and some again (duplicates)."""
    return list(history) + (draw(st.lists(st.sampled_from(history), max_size=4)) if history else [])


def deliver(draw: st.DrawFn, messages: list[tuple[object, DealTopic]]) -> list[Delivery]:
    """One arrival order of the messages, over two partitions (as after a partition change);
    offsets are assigned in arrival order per topic-partition, as Kafka would."""
    sequence = draw(st.permutations(messages))
    next_offset: dict[tuple[DealTopic, int], int] = {}
    deliveries = []
    for fact, topic in sequence:
        partition = draw(st.sampled_from((0, 0, 0, 1)))
        offset = next_offset.get((topic, partition), 0)
        deliveries.append(Delivery(fact, topic, offset, partition))
        next_offset[(topic, partition)] = offset + 1
    return deliveries


def batches_with_redelivery(draw: st.DrawFn, deliveries: list[Delivery]) -> list[list[Delivery]]:
    """Cut deliveries into batches; after each, redeliver a prefix (a crash before the commit)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(deliveries)), max_size=4)))
    batches, start = [], 0
    for cut in [*cuts, len(deliveries)]:
        batch = deliveries[start:cut]
        batches += [batch, batch[: draw(st.integers(0, len(batch)))]]
        start = cut
    return batches


def _canonical(state: DealState) -> tuple:
    return (state.stages, state.activities, sum(state.duplicates))


@settings(max_examples=300, deadline=None)
@given(deal_histories(), st.data())
def test_any_arrival_order_gives_the_same_state(history: list, data: st.DataObject) -> None:
    messages = with_repeats(data.draw, history)
    first = fold(DealState("d"), deliver(data.draw, messages))
    second = fold(DealState("d"), deliver(data.draw, messages))
    assert _canonical(first.state) == _canonical(second.state)
    distinct = {fact.event_id for fact, _ in history}
    assert len(first.state.stages) + len(first.state.activities) == len(distinct)


@settings(max_examples=300, deadline=None)
@given(deal_histories(), st.data())
def test_each_repeat_is_counted_once_as_a_duplicate(history: list, data: st.DataObject) -> None:
    deliveries = deliver(data.draw, with_repeats(data.draw, history))
    state = fold(DealState("d"), deliveries).state
    assert sum(state.duplicates) == len(deliveries) - len({fact.event_id for fact, _ in history})


@settings(max_examples=300, deadline=None)
@given(deal_histories(), st.data())
def test_batches_and_redelivery_give_the_state_of_one_fold(history: list, data: st.DataObject) -> None:
    deliveries = deliver(data.draw, with_repeats(data.draw, history))
    state = DealState("d")
    for batch in batches_with_redelivery(data.draw, deliveries):
        state = fold(state, batch).state
    assert state == fold(DealState("d"), deliveries).state


def replay(data: st.DataObject, history: list, rollups: Rollups) -> Iterator[DealState]:
    """Fold a history in drawn batches (with redelivery), applying each change to ``rollups``;
    yields the state after every applied change."""
    state = DealState("d")
    for batch in batches_with_redelivery(data.draw, deliver(data.draw, with_repeats(data.draw, history))):
        result = fold(state, batch)
        if result.changed:
            rollups.apply(0, state, result)
            yield result.state
        state = result.state


@settings(max_examples=300, deadline=None)
@given(deal_histories(), st.data())
def test_incremental_aggregates_equal_a_rebuild_from_the_final_state(history: list, data: st.DataObject) -> None:
    incremental = Rollups(CALENDAR)
    states = list(replay(data, history, incremental))
    state = states[-1] if states else DealState("d")
    rebuilt = Rollups(CALENDAR)
    rebuilt.rebuild(0, [(state, 0)])
    incremental_rollup = incremental.partition(0) or PartitionRollup()
    assert (incremental_rollup.sums, incremental_rollup.awaiting) == (
        rebuilt.partition(0).sums,
        rebuilt.partition(0).awaiting,
    )
    # The rebuild counts each observation in its UTC quarter hour's periods; full_contributions in the
    # periods of its moment, directly.
    expected = full_contributions(state, CALENDAR)
    cells = {
        (scope, family, labels): value
        for scope, families in rebuilt.partition(0).sums.items()
        for family, by_labels in families.items()
        for labels, value in by_labels.items()
    }
    assert cells == {key: value for key, value in expected.sums.items() if value != (0, 0)}
    assert rebuilt.partition(0).awaiting == ({"d": expected.awaiting} if expected.awaiting else {})


@settings(max_examples=200, deadline=None)
@given(deal_histories(), st.data())
def test_counts_never_go_negative(history: list, data: st.DataObject) -> None:
    rollups = Rollups(CALENDAR)
    for _ in replay(data, history, rollups):
        for families in rollups.partition(0).sums.values():
            for cells in families.values():
                assert all(count > 0 for count, _ in cells.values())


def _profile_record(rep: str, team: str, updated_at: float, zone: str) -> Profile:
    data = {
        "rep_id": rep,
        "team": team,
        "role": "sdr",
        "timezone": zone,
        "updated_at": datetime.fromtimestamp(updated_at, UTC).isoformat(),
    }
    return profile_from_json(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))


profile_changes = st.lists(
    st.tuples(
        st.sampled_from(REPS),
        st.sampled_from(("north", "south")),
        times,
        st.sampled_from(("UTC", "Asia/Tokyo")),
        st.integers(0, 30),  # after how many deal batches it arrives
    ),
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(deal_histories(), profile_changes, st.data())
def test_profiles_arriving_at_any_point_give_the_aggregates_of_a_rebuild(
    history: list, changes: list, data: st.DataObject
) -> None:
    """Teams and working hours are resolved against the profile in force: a profile arriving before,
    between or after the deal's events leaves the aggregates a rebuild under the final profiles gives."""
    table: dict[bytes, bytes] = {}
    directory = RepDirectory(table)
    ctx = FoldContext(CALENDAR.calendar, directory)
    incremental = Rollups(ctx)
    incremental.rebuild(0, [])
    deals: dict[bytes, bytes] = {}
    sync = ProfileSync(directory, incremental, deals)
    pending = sorted(changes, key=lambda change: change[4])
    state = DealState("d")
    batches = batches_with_redelivery(data.draw, deliver(data.draw, with_repeats(data.draw, history)))
    for number, batch in enumerate([*batches, []]):
        while pending and (pending[0][4] <= number or not batch):
            rep, team, updated_at, zone, _ = pending.pop(0)
            _, old = decode_profile_history(table[rep.encode()]) if rep.encode() in table else (0, ())
            table[rep.encode()] = encode_profile_history(0, merge(old, _profile_record(rep, team, updated_at, zone)))
            sync()
        result = fold(state, batch)
        if result.changed:
            incremental.apply(0, state, result)
            state = result.state
            deals[b"d"] = encode_deal(0, state)
    rebuilt = Rollups(ctx)
    rebuilt.rebuild(0, [(state, 0)])
    assert (incremental.partition(0).sums, incremental.partition(0).awaiting) == (
        rebuilt.partition(0).sums,
        rebuilt.partition(0).awaiting,
    )
