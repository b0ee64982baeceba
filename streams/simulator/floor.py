"""A seeded, realistic CRM stream for demos and benchmarks: the schedule, with no clock or broker.

Leads arrive as a Poisson process from weighted sources and are assigned round-robin to SDRs.
Most get a first touch after a log-normal delay (median about 90 s), some wait far past the SLA,
a few are never answered (and lost for no response hours later). Calls have realistic outcomes
and talk times; emails are opened, answered or bounce; qualified leads are handed to an AE,
meetings are booked and held (or missed), proposals go out, deals are won or lost with amounts.
About 0.5% of events come with a malformed copy before them and 0.5% are repeated, so the dead-letter
path and deduplication are exercised (a broken copy rather than a broken event: a lead whose only
first touch was lost would wait for an answer for ever, and the page would show it).

The schedule is pure (:class:`CrmSimulation` yields messages for a time range), so the
benchmark and the tests can use the same mix without a clock; :mod:`streams.simulator.run`
plays it to Kafka (``leadpulse simulate``).
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from streams.config import Settings
from streams.state.codec import exact

SOURCES = (
    ("inbound_demo", 30),
    ("inbound_content", 25),
    ("outbound", 20),
    ("referral", 10),
    ("event", 10),
    ("partner", 5),
)
TEAMS = ("emea", "americas", "apac")
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Singapore", "Europe/London", "America/Los_Angeles")
DEAL_TYPES = (("new_business", 70), ("upsell", 15), ("cross_sell", 10), ("renewal", 5))
OUTCOMES = (("connected", 35), ("no_answer", 35), ("voicemail", 20), ("busy", 5), ("failed", 5))
EVENTS_PER_LEAD = 9  # average, for turning an event rate into a lead arrival rate
# A lead's fate (each after the previous): never answered; qualified (else lost for no response);
# its meeting held (else lost as a no-show); its close date kept (else it slips and stays open); won.
NEVER_ANSWERED = 0.04
GIVEN_UP_AFTER_HOURS = (2.0, 8.0)  # a lead nobody answered is lost for no response after this long
QUALIFIED = 0.55
MEETING_HELD = 0.8
SLIPS = 0.1
WON = 0.45
AMOUNTS = (5_000, 120_000)  # a qualified deal's amount, uniform, in thousands
WIN_SHARE = (1 - NEVER_ANSWERED) * QUALIFIED * MEETING_HELD * (1 - SLIPS) * WON
MONTH_SECONDS = 30.4 * 86400
MAX_QUOTA = 900_000_000_000  # money is valid up to 10^12 (schemas/events.py)


@dataclass(order=True)
class _Scheduled:
    at: float
    sequence: int
    topic: str = field(compare=False)
    key: str = field(compare=False)
    value: dict = field(compare=False)


@dataclass(frozen=True)
class Message:
    topic: str
    key: bytes | None
    value: bytes


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _weighted(rng: random.Random, options: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([name for name, _ in options], weights=[weight for _, weight in options])[0]


class CrmSimulation:
    """The simulated CRM: reps, and leads whose whole lifecycle is scheduled when they arrive."""

    def __init__(
        self,
        settings: Settings,
        *,
        seed: int,
        rate: float,
        reps_per_team: int = 4,
        teams: tuple[str, ...] = TEAMS,
        sources: tuple[tuple[str, int], ...] = SOURCES,
        first_deal: int = 1,
    ) -> None:
        self.topics = settings.topics
        self.rng = random.Random(seed)
        self.lead_rate = max(rate, 0.01) / EVENTS_PER_LEAD
        self.teams = teams
        self.sources = sources
        self.sdrs = [f"sdr-{team}-{i}" for team in teams for i in range(1, reps_per_team + 1)]
        self.aes = [f"ae-{team}-{i}" for team in teams for i in range(1, reps_per_team // 2 + 1)]
        self._queue: list[_Scheduled] = []
        self._sequence = itertools.count()
        self._deal_numbers = itertools.count(first_deal)  # another simulation's deals start elsewhere
        self._event_numbers = itertools.count(1)
        self._next_arrival: float | None = None
        self._sdr_turn = itertools.cycle(self.sdrs)

    # --- reps ------------------------------------------------------------------------------

    def profiles(self, now: float) -> list[Message]:
        messages = []
        for rep in self.sdrs + self.aes:
            team = rep.split("-")[1]
            profile = {
                "rep_id": rep,
                "team": team,
                "role": "sdr" if rep.startswith("sdr") else "ae",
                "timezone": ZONES[self.teams.index(team) % len(ZONES)],
                "monthly_quota": None if rep.startswith("sdr") else f"{self._quota()}.00",
                "currency": "USD",
                "targets": {"calls_per_day": 40, "emails_per_day": 60, "meetings_per_week": 8},
                "updated_at": _iso(now),
            }
            messages.append(Message(self.topics.reps, rep.encode(), orjson.dumps(profile)))
        return messages

    def _quota(self) -> int:
        """An AE's monthly quota: about what the simulated volume lets an AE win in a month (0.8 to
        1.4 times), so attainment and coverage read like a real floor's at any rate."""
        expected = self.lead_rate * WIN_SHARE * sum(AMOUNTS) / 2 * MONTH_SECONDS / len(self.aes)
        return min(MAX_QUOTA, max(1000, int(round(expected * self.rng.uniform(0.8, 1.4), -3))))

    # --- leads -----------------------------------------------------------------------------

    def _event(self, at: float, topic: str, deal: str, rep: str, **fields: object) -> None:
        value = {
            "event_id": f"ev-{next(self._event_numbers):09d}",
            "occurred_at": _iso(at),
            "deal_id": deal,
            "rep_id": rep,
            **fields,
        }
        heapq.heappush(self._queue, _Scheduled(at, next(self._sequence), topic, deal, value))

    def _call(self, at: float, deal: str, rep: str, direction: str = "outbound") -> None:
        outcome = _weighted(self.rng, OUTCOMES) if direction == "outbound" else "connected"
        talk = round(self.rng.lognormvariate(5.0, 0.8)) if outcome == "connected" else self.rng.randrange(0, 40)
        self._event(
            at,
            self.topics.calls,
            deal,
            rep,
            call_id=f"call-{next(self._event_numbers)}",
            direction=direction,
            outcome=outcome,
            talk_seconds=min(talk, 7200),
            wrap_up_seconds=self.rng.randrange(0, 180),
        )

    def _email(self, at: float, deal: str, rep: str, action: str = "sent") -> None:
        self._event(
            at,
            self.topics.emails,
            deal,
            rep,
            email_id=f"mail-{next(self._event_numbers)}",
            action=action,
            personalized=self.rng.random() < 0.5,
        )

    def _lead(self, created: float) -> None:
        rng = self.rng
        deal = f"deal-{next(self._deal_numbers):07d}"
        sdr = next(self._sdr_turn)
        source = _weighted(rng, self.sources)
        self._event(created, self.topics.deal_stages, deal, sdr, stage="new", source=source)
        roll = rng.random()
        if roll < NEVER_ANSWERED:
            # Never answered: it waits past its SLA, and after some hours the floor gives it up, as a
            # real one does (else the live page fills with leads weeks old).
            given_up = created + rng.uniform(*GIVEN_UP_AFTER_HOURS) * 3600
            self._event(given_up, self.topics.deal_stages, deal, sdr, stage="lost", lost_reason="no_response")
            return
        delay = rng.uniform(900, 5400) if roll < 0.14 else rng.lognormvariate(4.5, 1.0)
        touch = created + delay
        (self._call if rng.random() < 0.6 else self._email)(touch, deal, sdr)
        self._event(touch + 5, self.topics.deal_stages, deal, sdr, stage="contacted")
        at = touch
        for _ in range(rng.randrange(0, 4)):  # follow-ups and replies
            at += rng.uniform(30, 600)
            kind = rng.random()
            if kind < 0.3:
                self._email(at, deal, sdr, "opened")
            elif kind < 0.5:
                self._email(at, deal, sdr, "received")
                self._email(at + rng.lognormvariate(5.0, 1.0), deal, sdr, "sent")
            elif kind < 0.55:
                self._email(at, deal, sdr, "bounced")
            elif kind < 0.7:
                self._call(at, deal, sdr, "inbound")
            else:
                self._call(at, deal, sdr)
        if rng.random() > QUALIFIED:
            self._event(
                at + rng.uniform(300, 3600), self.topics.deal_stages, deal, sdr, stage="lost", lost_reason="no_response"
            )
            return
        amount = rng.randrange(AMOUNTS[0] // 1000, AMOUNTS[1] // 1000) * 1000
        at += rng.uniform(120, 1200)
        ae = rng.choice([ae for ae in self.aes if ae.split("-")[1] == sdr.split("-")[1]])
        stale = rng.random() < SLIPS  # a rep who never moved the close date: the deal has slipped
        close_in_days = -1 if stale else 30
        self._event(
            at,
            self.topics.deal_stages,
            deal,
            ae,
            stage="qualified",
            amount=amount,
            currency="USD",
            deal_type=_weighted(rng, DEAL_TYPES),
            expected_close_date=datetime.fromtimestamp(at + close_in_days * 86400, UTC).date().isoformat(),
        )
        meeting = f"meet-{deal}"
        self._event(
            at + 60, self.topics.meetings, deal, ae, meeting_id=meeting, action="booked", scheduled_for=_iso(at + 1800)
        )
        held = rng.random() < MEETING_HELD
        self._event(at + 1800, self.topics.meetings, deal, ae, meeting_id=meeting, action="held" if held else "no_show")
        if not held:
            self._event(at + 2400, self.topics.deal_stages, deal, ae, stage="lost", lost_reason="no_show")
            return
        self._event(at + 1900, self.topics.deal_stages, deal, ae, stage="proposal", amount=f"{amount}.00")
        if stale:
            self._event(at + 2400, self.topics.deal_stages, deal, ae, stage="negotiation")
            return  # stays open past its expected close date
        outcome = "won" if rng.random() < WON else "lost"
        self._event(
            at + rng.uniform(2400, 7200),
            self.topics.deal_stages,
            deal,
            ae,
            stage=outcome,
            amount=amount,
            lost_reason=None if outcome == "won" else "price",
        )

    def change_rate(self, rate: float, at: float) -> None:
        """From ``at`` on, leads arrive at ``rate`` events per second (the demo's history is a real
        floor's pace, its live part livelier); quotas stay those of the profiles already sent."""
        self.lead_rate = max(rate, 0.01) / EVENTS_PER_LEAD
        self._next_arrival = at + self.rng.expovariate(self.lead_rate)

    # --- output ----------------------------------------------------------------------------

    def until(self, now: float) -> Iterator[Message]:
        """Every message due at or before ``now``: new arrivals scheduled, then due events."""
        if self._next_arrival is None:
            self._next_arrival = now
        while self._next_arrival <= now:
            self._lead(self._next_arrival)
            self._next_arrival += self.rng.expovariate(self.lead_rate)
        while self._queue and self._queue[0].at <= now:
            item = heapq.heappop(self._queue)
            yield from self._emit(item)

    def _emit(self, item: _Scheduled) -> Iterator[Message]:
        value = exact(orjson.dumps(item.value))  # a replay keeps a million of them
        roll = self.rng.random()
        if roll < 0.005:  # a broken copy first, then the event itself: the floor's lifecycles stay whole
            yield Message(item.topic, item.key.encode(), self._malformed(item.value))
        yield Message(item.topic, item.key.encode(), value)
        if roll > 0.995:
            yield Message(item.topic, item.key.encode(), value)  # a repeat: same event_id

    def _malformed(self, value: dict) -> bytes:
        kind = self.rng.randrange(5)
        broken = dict(value)
        if kind == 0:
            return orjson.dumps(value)[:-7]  # truncated JSON
        if kind == 1:
            broken["occurred_at"] = broken["occurred_at"].replace("Z", "")  # no offset
        elif kind == 2:
            broken.pop("rep_id")
        elif kind == 3:
            broken["deal_id"] = 12345  # a number where a string belongs
        else:
            broken["occurred_at"] = _iso(time.time() + 86400)  # a day in the future
        return orjson.dumps(broken)

    def backfill(self, start: float, end: float, step: float = 1.0) -> Iterator[Message]:
        """Play the stream from ``start`` to ``end`` at once (history for the boards)."""
        self._next_arrival = start
        at = start
        while at < end:
            at = min(end, at + step)
            yield from self.until(at)
