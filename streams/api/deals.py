"""A deal's state as the API shows it: a pure function of the deal's record and the profiles."""

from __future__ import annotations

from datetime import date

from streams.api.models import Closed, DealBody, FirstResponse, SlaState
from streams.fold import deals
from streams.fold.contributions import FoldContext, business_response_seconds, lost_reason
from streams.fold.deals import DealState
from streams.fold.facts import decimal_text
from streams.fold.outputs import crossings, instant
from streams.fold.profiles import team_at


def deal_body(state: DealState, ctx: FoldContext, now: float) -> DealBody | None:
    """None for a deal without stage events (activities only: not a deal yet)."""
    created = deals.created_at(state)
    latest = deals.current_stage(state)
    if created is None or latest is None:
        return None
    source = deals.source(state)
    amount_micro, currency = deals.amount(state)
    touch = deals.first_response(state)
    response = None
    if touch is not None:
        owner = deals.stage_at(state, touch.at)
        assert owner is not None
        response = FirstResponse(
            at=instant(touch.at),
            kind="call" if touch.kind == "call" else "email",
            rep=owner.rep,
            seconds=round(touch.at - created, 3),  # event times are milliseconds
            business_seconds=round(business_response_seconds(ctx, owner.rep, created, touch.at), 3),
        )
    closing = deals.closing_stage(state)
    closed = None
    if closing is not None:
        outcome = "won" if closing.stage == "won" else "lost"
        closed = Closed(outcome=outcome, at=instant(closing.at), lost_reason=lost_reason(state))
    steps = list(ctx.sla.steps(source))
    waiting = crossings(state, ctx)
    crossed = sum(1 for at in waiting if at <= now)
    if closed is not None:
        sla_state = "closed"
    elif touch is not None:
        sla_state = "answered"
    else:
        sla_state = "breached" if crossed else "waiting"
    expected = deals.expected_close(state)
    return DealBody(
        deal_id=state.deal_id,
        stage=latest.stage,
        owner=latest.rep,
        team=team_at(ctx.profiles, latest.rep, latest.team, now),
        source=source,
        deal_type=deals.deal_type(state),
        amount=None if amount_micro is None else decimal_text(amount_micro),
        currency=currency,
        expected_close_date=None if expected is None else date.fromisoformat(expected),
        created_at=instant(created),
        first_response=response,
        sla=SlaState(
            state=sla_state, steps_seconds=steps, steps_crossed=crossed, business_hours=ctx.sla.business_hours
        ),
        closed=closed,
        alerts_sent=list(state.alerts),
        stage_events=len(state.stages),
        activities=len(state.activities),
    )
