"""What LeadPulse owes other services about a deal (SPEC §4), as a pure function of its state.

The deal's state records what was already published (``alerts``: keys of alerts sent;
``response``: revision and fingerprint of the last lead-response record). :func:`plan` compares
what the state calls for *now* with what was published and returns the records still owed and
the state that records them. The caller publishes the records first and writes the state
after, so a crash in between repeats a record (same alert id, same revision), never loses one;
and a restart or a rebalance, which reads the recorded state, repeats nothing.

- ``sla_breach``: one per escalation step an awaiting lead has crossed (at ``created_at`` plus
  the step, or the step's worth of the owner's business time), while it still waits.
- ``sla_resolved``: once per highest step breached, when a lead with a breach alert is no longer
  awaiting (touched or closed). Steps crossed while a lead was closed are not alerted when it
  reopens; steps it crosses after that are, and resolve again.
- ``deal_slipped``: once per deal and expected close date, when the open deal's date is over
  (the start of the next day in the reporting timezone).
- a lead response: when the first response is known, and a new revision whenever it changes.

Steps and slips that happened longer ago than the lookback are not alerted: a backfill of old
history does not page anyone about leads that were waiting last year.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import pairwise

import orjson

from schemas.events import TERMINAL_STAGES
from schemas.outputs import AlertKind, AlertRecord, LeadResponseRecord
from streams.fold import deals
from streams.fold.contributions import DealView, FoldContext, business_response_seconds
from streams.fold.deals import DealState
from streams.fold.facts import decimal_text
from streams.fold.profiles import profile_at, team_at

_BREACH = "sla_breach:"
_RESOLVED = "sla_resolved:"  # with the highest step breached: a reopened lead that breaches further resolves again
_SLIPPED = "deal_slipped:"


Json = dict[str, object]  # a record as its JSON has it, keys in its model's field order


@dataclass(init=False)  # immutable by convention (streams/fold/facts.py says why)
class Plan:
    """The records a deal owes, as the plain JSON values of their models (``schemas/outputs.py``):
    a pydantic record costs about 2.5 µs to build and 2 µs to dump, a dict 0.3 µs to write with
    orjson (:func:`record_json`; tests hold the bytes equal to the models' ``model_dump_json``)."""

    alert_contents: tuple[Json, ...]
    response_content: Json | None  # with its revision
    state: DealState  # with what they publish recorded

    def __init__(self, alert_contents: tuple[Json, ...], response_content: Json | None, state: DealState) -> None:
        self.alert_contents = alert_contents
        self.response_content = response_content
        self.state = state

    @property
    def owed(self) -> bool:
        return bool(self.alert_contents) or self.response_content is not None

    @property
    def alerts(self) -> tuple[AlertRecord, ...]:
        return tuple(AlertRecord.model_validate(content) for content in self.alert_contents)

    @property
    def response(self) -> LeadResponseRecord | None:
        content = self.response_content
        return None if content is None else LeadResponseRecord.model_validate(content)


def record_json(content: Json) -> bytes:
    """A record's bytes on its output topic."""
    return orjson.dumps(content)


def instant(epoch: float) -> datetime:
    """Epoch seconds as an aware UTC datetime (how output records carry times)."""
    return datetime.fromtimestamp(epoch, UTC)


def response_content(state: DealState, ctx: FoldContext, view: DealView | None = None) -> dict[str, object] | None:
    """The deal's first response as its record's JSON has it, but the revision (None until there
    is one): what :func:`fingerprint` reads. Plain values, so the record (a pydantic model: a few
    µs to build, dump and copy) is built only when the fingerprint changed."""
    view = view or DealView(state)
    created, touch = view.created, view.touch
    if created is None or touch is None:
        return None
    owner = view.owner_at(touch.at)
    seconds = touch.at - created
    business = business_response_seconds(ctx, owner.rep, created, touch.at)
    sla = ctx.sla.sla_seconds(view.source)
    return {
        "deal_id": state.deal_id,
        "rep": owner.rep,
        "team": team_at(ctx.profiles, owner.rep, owner.team, touch.at),
        "source": view.source,
        "created_at": json_instant(created),
        "first_touch_at": json_instant(touch.at),
        "first_touch_kind": "call" if touch.kind == "call" else "email",
        "first_touch_event_id": touch.event_id,
        "response_seconds": float(seconds),
        "business_seconds": float(business),
        "sla_seconds": float(sla),
        "sla_breached": (business if ctx.sla.business_hours else seconds) > sla,
    }


def json_instant(epoch: float) -> str:
    """Epoch seconds as pydantic writes an aware UTC datetime in JSON (``...T10:00:00.5Z``)."""
    return instant(epoch).isoformat().replace("+00:00", "Z")


def response_record(content: dict[str, object], revision: int) -> Json:
    """The lead-response record of a content and revision, in the model's field order."""
    return {"deal_id": content["deal_id"], "revision": revision, **content}


def fingerprint(content: dict[str, object]) -> str:
    """What identifies a response's content (everything but the revision): the same digest as the
    record's ``model_dump(mode="json")`` without the revision gives (what earlier releases stored)."""
    return hashlib.blake2b(orjson.dumps(content, option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()


def slip_at(expected_close: str, ctx: FoldContext) -> float:
    """When a deal expected to close on that date has slipped: the start of the next day
    (``inf`` for 9999-12-31, ``-inf`` for dates so early no instant can hold them)."""
    return ctx.calendar.start_of_next_day(expected_close)


def crossings(state: DealState, ctx: FoldContext, view: DealView | None = None) -> list[float]:
    """When an awaiting lead crosses each of its SLA steps (empty when it is not awaiting)."""
    view = view or DealView(state)
    created = view.created
    if created is None or view.closing is not None or view.touch is not None:
        return []
    owner = state.stages[-1].rep
    return ctx.sla.crossings(created, view.source, profile_at(ctx.profiles, owner, created))


def waiting_since(state: DealState) -> float | None:
    """When the lead last started to wait: its creation, or the stage event that reopened it
    after it was won or lost (steps crossed while it was closed are not alerted)."""
    since = deals.created_at(state)
    for closed, reopened in pairwise(state.stages):
        if closed.stage in TERMINAL_STAGES and reopened.stage not in TERMINAL_STAGES:
            since = reopened.at
    return since


def plan(
    state: DealState,
    ctx: FoldContext,
    now: float,
    lookback_seconds: float,
    view: DealView | None = None,
    response_moved: bool = True,
) -> Plan:
    """What the deal owes now. ``view`` is the state's :class:`DealView` when the caller has one;
    ``response_moved=False`` says the lead response's inputs are as when it was last planned
    (the recorded revision stands, so it is not built again)."""
    view = view or DealView(state)
    created = view.created
    if created is None:
        return Plan((), None, state)
    sent = set(state.alerts)
    alerts: list[Json] = []
    source = view.source
    steps = ctx.sla.steps(source)
    oldest = now - lookback_seconds

    def alert(kind: AlertKind, which: str, at: float, **fields: object) -> None:
        owner = deals.stage_at(state, at)
        assert owner is not None
        key = f"{kind.value}:{which}" if which else kind.value
        sent.add(key)
        content: Json = {
            "alert_id": f"{key}@{state.deal_id}",
            "kind": kind.value,
            "deal_id": state.deal_id,
            "rep": owner.rep,
            "team": team_at(ctx.profiles, owner.rep, owner.team, at),
            "source": source,
            "at": json_instant(at),
            "created_at": json_instant(created),
            "step": None,
            "steps": None,
            "threshold_seconds": None,
            "business_hours": ctx.sla.business_hours,
            "resolution": None,
            "expected_close_date": None,
            "amount": None,
            "currency": None,
        }
        content.update(fields)
        alerts.append(content)

    since = waiting_since(state) or created
    waiting = crossings(state, ctx, view)  # empty once the lead is touched or closed
    for number, crossed_at in enumerate(waiting, start=1):
        if f"{_BREACH}{number}" not in sent and max(oldest, since) <= crossed_at <= now:
            alert(
                AlertKind.SLA_BREACH,
                str(number),
                crossed_at,
                step=number,
                steps=len(steps),
                threshold_seconds=float(steps[number - 1]),
            )
    breached = [int(key[len(_BREACH) :]) for key in state.alerts if key.startswith(_BREACH)]
    highest = max(breached, default=0)
    if highest and f"{_RESOLVED}{highest}" not in sent and not waiting:
        touch, closing = view.touch, view.closing
        resolved_at = touch.at if touch is not None else closing.at if closing is not None else now
        alert(
            AlertKind.SLA_RESOLVED,
            str(highest),
            resolved_at,
            step=highest,
            steps=len(steps),
            resolution="touched" if touch is not None else "closed",
        )
    expected = deals.expected_close(state)
    if expected is not None and view.closing is None:
        slipped_at = slip_at(expected, ctx)
        if f"{_SLIPPED}{expected}" not in sent and oldest <= slipped_at <= now:
            amount_micro, currency = deals.amount(state)
            alert(
                AlertKind.DEAL_SLIPPED,
                expected,
                slipped_at,
                expected_close_date=date.fromisoformat(expected).isoformat(),
                amount=None if amount_micro is None else decimal_text(amount_micro),
                currency=currency,
            )

    response: Json | None = None
    recorded = state.response
    current = response_content(state, ctx, view) if response_moved or recorded is None else None
    if current is not None:
        mark = fingerprint(current)
        if recorded is None or recorded[1] != mark:
            revision = 1 if recorded is None else recorded[0] + 1
            response = response_record(current, revision)
            recorded = (revision, mark)
    if not alerts and response is None:
        return Plan((), None, state)
    return Plan(tuple(alerts), response, state.published(tuple(sorted(sent)), recorded))


def next_due(state: DealState, ctx: FoldContext, now: float, view: DealView | None = None) -> float | None:
    """The next moment after ``now`` at which :func:`plan` will owe a new alert, if any."""
    view = view or DealView(state)
    sent = set(state.alerts)
    waiting = crossings(state, ctx, view)
    due = [at for number, at in enumerate(waiting, start=1) if at > now and f"{_BREACH}{number}" not in sent]
    expected = deals.expected_close(state)
    if expected is not None and view.closing is None and f"{_SLIPPED}{expected}" not in sent:
        slipped_at = slip_at(expected, ctx)
        if slipped_at > now:
            due.append(slipped_at)
    return min((at for at in due if math.isfinite(at)), default=None)
