"""The facts a deal's state is made of: compact, immutable, free of Faust and of pydantic.

Immutable by convention, not ``frozen=True``: compiled with mypyc, a dataclass's generated
``__init__`` stays a Python function (about 410 ns per object when frozen, 160 when not) while an
explicit one is native (30 ns), and the fold makes several of these objects per event. So the hot
classes here and in :mod:`streams.fold.deals` write their ``__init__`` and keep ``@dataclass``
for equality, hashing and repr only; nothing assigns to them after construction, and
``dataclasses.replace`` (800 ns) stays off the hot path.

Times are epoch seconds (float, microsecond precision); money and durations that are summed
are integers in micro-units (``MICRO`` per unit) so that adding and retracting a contribution
is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum

from schemas.events import CallLogged, DealEvent, DealStageChanged, EmailActivity, MeetingActivity

MICRO = 1_000_000


class DealTopic(IntEnum):
    """The deal-scoped input topics, as indexes into a deal's offset watermarks."""

    __hash__ = int.__hash__  # as PeriodKind's (streams/fold/periods.py)

    DEAL_STAGES = 0
    CALLS = 1
    EMAILS = 2
    MEETINGS = 3


def to_micro(value: Decimal | float) -> int:
    return round(value * MICRO)


def decimal_text(micro: int) -> str:
    """Micro-units as an exact decimal string (``2500500000`` -> ``"2500.5"``)."""
    units, fraction = divmod(micro, MICRO)
    return f"{units}.{fraction:06d}".rstrip("0").rstrip(".")


@dataclass(init=False, unsafe_hash=True)  # immutable by convention: see the module's docstring
class StageFact:
    at: float
    event_id: str
    stage: str
    rep: str
    team: str | None  # None: the team of the rep's profile in force (streams/fold/contributions.py)
    amount_micro: int | None
    currency: str
    source: str | None
    deal_type: str | None  # None: not given by this event
    expected_close: str | None  # YYYY-MM-DD
    lost_reason: str | None

    def __init__(
        self,
        at: float,
        event_id: str,
        stage: str,
        rep: str,
        team: str | None,
        amount_micro: int | None,
        currency: str,
        source: str | None,
        deal_type: str | None,
        expected_close: str | None,
        lost_reason: str | None = None,
    ) -> None:
        self.at = at
        self.event_id = event_id
        self.stage = stage
        self.rep = rep
        self.team = team
        self.amount_micro = amount_micro
        self.currency = currency
        self.source = source
        self.deal_type = deal_type
        self.expected_close = expected_close
        self.lost_reason = lost_reason

    @property
    def order(self) -> tuple[float, str]:
        return (self.at, self.event_id)


@dataclass(init=False, unsafe_hash=True)  # immutable by convention: see the module's docstring
class ActivityFact:
    """A call, email or meeting. ``action`` is the call direction or the email/meeting action."""

    at: float
    event_id: str
    kind: str  # "call" | "email" | "meeting"
    rep: str
    team: str | None
    action: str
    outcome: str  # calls only
    handle_micro: int  # calls only: talk + wrap-up seconds
    personalized: bool  # emails only

    def __init__(
        self,
        at: float,
        event_id: str,
        kind: str,
        rep: str,
        team: str | None,
        action: str,
        outcome: str = "",
        handle_micro: int = 0,
        personalized: bool = False,
    ) -> None:
        self.at = at
        self.event_id = event_id
        self.kind = kind
        self.rep = rep
        self.team = team
        self.action = action
        self.outcome = outcome
        self.handle_micro = handle_micro
        self.personalized = personalized

    @property
    def order(self) -> tuple[float, str]:
        return (self.at, self.event_id)

    @property
    def is_touch(self) -> bool:
        """SPEC §2: an outbound call (any outcome) or an email sent."""
        return (self.kind == "call" and self.action == "outbound") or (self.kind == "email" and self.action == "sent")

    @property
    def is_inbound(self) -> bool:
        """SPEC §2: an inbound activity (email received, inbound call) opens a re-response wait."""
        return (self.kind == "call" and self.action == "inbound") or (
            self.kind == "email" and self.action == "received"
        )


Fact = StageFact | ActivityFact


def fact_from_event(event: DealEvent) -> Fact:
    """The fact a validated deal-scoped event contributes to its deal."""
    at = event.occurred_at.timestamp()
    if isinstance(event, DealStageChanged):
        return StageFact(
            at=at,
            event_id=event.event_id,
            stage=event.stage,
            rep=event.rep_id,
            team=event.team,
            amount_micro=None if event.amount is None else to_micro(event.amount),
            currency=event.currency,  # type: ignore[arg-type]  # _or_default: never None once validated
            source=event.source,
            deal_type=event.deal_type,
            expected_close=None if event.expected_close_date is None else event.expected_close_date.isoformat(),
            lost_reason=event.lost_reason,
        )
    if isinstance(event, CallLogged):
        return ActivityFact(
            at=at,
            event_id=event.event_id,
            kind="call",
            rep=event.rep_id,
            team=event.team,
            action=event.direction,
            outcome=event.outcome,
            handle_micro=to_micro(event.talk_seconds + event.wrap_up_seconds),  # type: ignore[operator]
        )
    if isinstance(event, EmailActivity):
        return ActivityFact(
            at=at,
            event_id=event.event_id,
            kind="email",
            rep=event.rep_id,
            team=event.team,
            action=event.action,
            personalized=event.personalized,  # type: ignore[arg-type]
        )
    if isinstance(event, MeetingActivity):
        return ActivityFact(
            at=at, event_id=event.event_id, kind="meeting", rep=event.rep_id, team=event.team, action=event.action
        )
    raise TypeError(f"not a deal-scoped event: {type(event).__name__}")
