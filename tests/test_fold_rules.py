"""SPEC §2 rules, one by one, with expectations computed by hand."""

from __future__ import annotations

from datetime import datetime

import pytest

from streams.fold import deals
from streams.fold.contributions import (
    LIFETIME,
    LIVE,
    AwaitingLead,
    Family,
    FoldContext,
    bucket_index,
    deal_contributions,
)
from streams.fold.deals import DealState, Delivery, fold
from streams.fold.facts import MICRO, ActivityFact, DealTopic, StageFact
from streams.fold.periods import Calendar, PeriodKind
from streams.state.rollups import Rollups

UTC_CALENDAR = FoldContext(Calendar("UTC"))
T0 = datetime.fromisoformat("2024-03-05T10:00:00+00:00").timestamp()


def stage(at: float, stage_name: str, rep: str = "ann", event_id: str | None = None, **fields: object) -> StageFact:
    values = dict(
        at=at,
        event_id=event_id or f"s-{stage_name}-{at}",
        stage=stage_name,
        rep=rep,
        team=None,
        amount_micro=None,
        currency="USD",
        source=None,
        deal_type="new_business",
        expected_close=None,
    )
    values.update(fields)
    return StageFact(**values)


def call(at: float, rep: str = "ann", direction: str = "outbound", event_id: str | None = None) -> ActivityFact:
    return ActivityFact(
        at=at, event_id=event_id or f"c-{at}", kind="call", rep=rep, team=None, action=direction, outcome="connected"
    )


def email(at: float, action: str = "sent", rep: str = "ann") -> ActivityFact:
    return ActivityFact(at=at, event_id=f"e-{at}-{action}", kind="email", rep=rep, team=None, action=action)


def build(*facts: StageFact | ActivityFact) -> DealState:
    offsets = dict.fromkeys(DealTopic, 0)
    deliveries = []
    for fact in facts:
        topic = DealTopic.DEAL_STAGES if isinstance(fact, StageFact) else DealTopic.CALLS
        deliveries.append(Delivery(fact, topic, offsets[topic]))
        offsets[topic] += 1
    return fold(DealState("d1"), deliveries).state


def first_response_cells(state: DealState, calendar: FoldContext = UTC_CALENDAR) -> dict:
    sums = deal_contributions(state, calendar).sums
    return {key: value for key, value in sums.items() if key[1] is Family.FIRST_RESPONSE}


def test_touch_before_created_at_is_prospecting_not_a_response() -> None:
    state = build(call(T0 - 100), stage(T0, "new"), email(T0 + 300))
    touch = deals.first_response(state)
    assert touch is not None and touch.at == T0 + 300
    cells = first_response_cells(state)
    day = ((PeriodKind.DAY, "2024-03-05"), Family.FIRST_RESPONSE, ("ann", "unassigned", None, str(bucket_index(300))))
    assert cells[day] == (1, 300 * MICRO)


def test_inbound_and_received_activity_is_not_a_touch() -> None:
    state = build(stage(T0, "new"), call(T0 + 10, direction="inbound"), email(T0 + 20, action="received"))
    assert deals.first_response(state) is None
    assert deal_contributions(state, UTC_CALENDAR).awaiting == AwaitingLead("ann", None, T0, None, T0 + 300)


def test_owner_change_before_first_touch_attributes_the_response_to_the_new_owner() -> None:
    state = build(stage(T0, "new", rep="ann"), stage(T0 + 100, "contacted", rep="bob"), call(T0 + 400, rep="bob"))
    cells = first_response_cells(state)
    reps = {labels[0] for (_, _, labels) in cells}
    assert reps == {"bob"}
    assert all(value == (1, 400 * MICRO) for value in cells.values())
    # ...while the deal's creation stays with the owner at creation.
    created = deal_contributions(state, UTC_CALENDAR).sums[(LIFETIME, Family.CREATED, ("ann", "unassigned", None))]
    assert created == (1, 0)


@pytest.mark.parametrize(
    ("seconds", "bucket"),
    [(0, 0), (60, 0), (60.000001, 1), (300, 1), (300.5, 2), (172800, 9), (172800.001, 10)],
)
def test_bucket_edges_are_inclusive_upper_bounds(seconds: float, bucket: int) -> None:
    assert bucket_index(seconds) == bucket
    state = build(stage(T0, "new"), call(T0 + seconds))
    (_, _, labels), *_ = first_response_cells(state)
    assert labels[3] == str(bucket)


def test_lost_deal_is_no_longer_awaiting_and_counts_as_lost_when_it_closed() -> None:
    state = build(stage(T0, "new"), stage(T0 + 86400, "lost", rep="bob"))
    contributions = deal_contributions(state, UTC_CALENDAR)
    assert contributions.awaiting is None
    assert contributions.sums[((PeriodKind.DAY, "2024-03-06"), Family.LOST, ("bob", "unassigned", None, "false"))] == (
        1,
        0,
    )
    assert not any(key[1] is Family.PIPELINE for key in contributions.sums)


def test_won_deal_counts_its_latest_amount_in_the_period_it_closed() -> None:
    state = build(
        stage(T0, "new", amount_micro=5 * MICRO, currency="EUR"),
        stage(T0 + 50, "proposal", amount_micro=7 * MICRO, currency="EUR"),
        stage(T0 + 100, "won"),
        stage(T0 + 200, "won", event_id="s-won-again"),
    )
    closing = deals.closing_stage(state)
    assert closing is not None and closing.at == T0 + 100
    sums = deal_contributions(state, UTC_CALENDAR).sums
    won_labels = ("ann", "unassigned", "EUR", "new_business", "true")  # it reached proposal before closing
    assert sums[((PeriodKind.MONTH, "2024-03"), Family.WON, won_labels)] == (1, 7 * MICRO)


def test_current_stage_ties_go_to_the_greatest_event_id() -> None:
    state = build(
        stage(T0, "new", event_id="a"),
        stage(T0 + 5, "proposal", event_id="b"),
        stage(T0 + 5, "qualified", event_id="c"),
    )
    latest = deals.current_stage(state)
    assert latest is not None and latest.stage == "qualified"
    assert (LIVE, Family.PIPELINE, ("ann", None, "qualified", "USD")) in deal_contributions(state, UTC_CALENDAR).sums


def test_source_is_the_earliest_stage_event_that_carries_one() -> None:
    state = build(
        stage(T0 + 10, "contacted", source="referral"), stage(T0, "new"), stage(T0 + 20, "qualified", source="event")
    )
    assert deals.source(state) == "referral"


def test_periods_follow_the_reporting_timezone() -> None:
    new_york = FoldContext(Calendar("America/New_York"))
    created = datetime.fromisoformat("2024-03-11T03:00:00+00:00").timestamp()  # 23:00 EDT on 10 March
    state = build(stage(created, "new"), call(created + 59 * 60 + 59))  # 23:59:59 EDT, still 10 March
    cells = first_response_cells(state, new_york)
    periods = {scope for (scope, _, _) in cells}
    assert periods == {
        (PeriodKind.HOUR, "2024-03-10T23:00-04:00"),
        (PeriodKind.DAY, "2024-03-10"),
        (PeriodKind.WEEK, "2024-03-04"),
        (PeriodKind.MONTH, "2024-03"),
    }
    next_day = build(stage(created, "new"), call(created + 3600))  # 00:00 EDT on 11 March
    assert (PeriodKind.DAY, "2024-03-11") in {scope for (scope, _, _) in first_response_cells(next_day, new_york)}


def test_a_late_touch_moves_the_first_response_out_of_its_old_period() -> None:
    rollups = Rollups(UTC_CALENDAR)
    before = build(stage(T0, "new"), email(T0 + 2 * 86400))  # answered two days later
    rollups.rebuild(0, [(before, 0)])
    late = fold(before, [Delivery(call(T0 + 30), DealTopic.CALLS, 99)])  # a call logged late, 30 s in
    rollups.apply(0, before, late)
    day = (PeriodKind.DAY, "2024-03-05")
    later_day = (PeriodKind.DAY, "2024-03-07")
    assert list(rollups.cells(day, Family.FIRST_RESPONSE, [0])) == [(("ann", "unassigned", None, "0"), 1, 30 * MICRO)]
    assert list(rollups.cells(later_day, Family.FIRST_RESPONSE, [0])) == []


def test_a_repeated_event_id_is_a_duplicate_and_a_redelivery_is_nothing() -> None:
    fact = call(T0)
    state = fold(DealState("d1"), [Delivery(fact, DealTopic.CALLS, 0)]).state
    repeated = fold(state, [Delivery(fact, DealTopic.CALLS, 1)])
    assert repeated.changed and repeated.state.duplicates == (0, 1, 0, 0)
    assert repeated.state.activities == state.activities
    redelivered = fold(repeated.state, [Delivery(fact, DealTopic.CALLS, 1), Delivery(fact, DealTopic.CALLS, 0)])
    assert not redelivered.changed and redelivered.state is repeated.state


def test_aggregates_of_periods_past_their_retention_are_pruned() -> None:
    now = datetime.fromisoformat("2024-03-20T12:30:00+00:00").timestamp()
    retention = {PeriodKind.HOUR: 24, PeriodKind.DAY: 35, PeriodKind.WEEK: 1, PeriodKind.MONTH: 13}
    rollups = Rollups(UTC_CALENDAR, retention)
    three_days_ago = now - 3 * 86400
    rollups.rebuild(0, [(build(stage(three_days_ago, "new"), call(three_days_ago + 30)), 0)])
    assert rollups.prune(now) == 1  # its hour only; the week of 17 March is the current one
    scopes = set(rollups.partition(0).sums)
    assert (PeriodKind.HOUR, "2024-03-17T12:00+00:00") not in scopes
    assert {
        (PeriodKind.DAY, "2024-03-17"),
        (PeriodKind.WEEK, "2024-03-11"),
        (PeriodKind.MONTH, "2024-03"),
        LIFETIME,
        LIVE,
    } <= scopes  # answered but still open: it stays in the live pipeline
    two_weeks_later = now + 14 * 86400
    rollups.prune(two_weeks_later)
    assert (PeriodKind.WEEK, "2024-03-11") not in set(rollups.partition(0).sums)
    assert (PeriodKind.DAY, "2024-03-17") in set(rollups.partition(0).sums)


def test_oldest_kept_period_starts() -> None:
    berlin = Calendar("Europe/Berlin")
    now = datetime.fromisoformat("2024-03-31T12:00:00+02:00").timestamp()
    assert (
        berlin.oldest_kept_start(PeriodKind.MONTH, now, 13)
        == datetime.fromisoformat("2023-02-01T00:00:00+01:00").timestamp()
    )
    assert (
        berlin.oldest_kept_start(PeriodKind.DAY, now, 35)
        == datetime.fromisoformat("2024-02-25T00:00:00+01:00").timestamp()
    )


def test_ids_are_compared_per_topic() -> None:
    """A call and an email with the same event_id are two events, in any order."""
    deal_call = ActivityFact(at=T0 + 10, event_id="42", kind="call", rep="ann", team=None, action="outbound")
    deal_email = ActivityFact(at=T0 + 20, event_id="42", kind="email", rep="ann", team=None, action="received")
    orders = [[deal_call, deal_email], [deal_email, deal_call]]
    states = []
    for order in orders:
        deliveries = [Delivery(fact, DealTopic.CALLS if fact.kind == "call" else DealTopic.EMAILS, 0) for fact in order]
        states.append(fold(DealState("d1"), deliveries).state)
    assert states[0].activities == states[1].activities and len(states[0].activities) == 2
    assert states[0].duplicates == states[1].duplicates == (0, 0, 0, 0)
