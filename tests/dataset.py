"""A known mixed dataset for broker tests: edge cases, random deals, repeats and bad input."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

TOPIC_OF = {"deal_stages": "crm.deal-stages", "calls": "crm.calls", "emails": "crm.emails", "meetings": "crm.meetings"}
REPS = {
    "ann": {
        "team": "emea",
        "role": "sdr",
        "timezone": "Europe/Berlin",
        "targets": {"calls_per_day": 40, "emails_per_day": 50, "meetings_per_week": 5},
    },
    "bob": {"team": "emea", "role": "ae", "timezone": "Europe/London", "monthly_quota": "50000.00", "currency": "EUR"},
    "cid": {
        "team": "americas",
        "role": "sdr",
        "timezone": "America/New_York",
        "working_hours": {day: ["07:30", "19:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat")},
        "targets": {"calls_per_day": 60},
    },
    "dee": {"team": "americas", "role": "ae", "monthly_quota": 80000},
}
# eve moves from emea to apac half an hour before "now": her earlier numbers stay in emea.
MOVER = "eve"
MOVE_AGO_SECONDS = 1800
SLA_BY_SOURCE = {"referral": 60.0}


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


@dataclass
class Dataset:
    now: float
    profiles: dict[str, list[dict]] = field(default_factory=dict)  # rep -> profile history
    events: dict[str, list[dict]] = field(default_factory=lambda: {topic: [] for topic in TOPIC_OF})
    messages: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    bad: list[tuple[str, bytes | None, bytes, str]] = field(default_factory=list)  # ..., expected reason
    _ids: int = 0

    def _next_id(self) -> str:
        self._ids += 1
        return f"e{self._ids:05d}"

    def add(self, topic: str, deal: str, rep: str, at: float, **fields: object) -> dict:
        event = {"event_id": self._next_id(), "occurred_at": iso(at), "deal_id": deal, "rep_id": rep, **fields}
        if topic == "calls":
            event = {"call_id": f"c-{event['event_id']}", "talk_seconds": 42, **event}
        elif topic == "emails":
            event = {"email_id": f"m-{event['event_id']}", **event}
        elif topic == "meetings":
            event = {"meeting_id": f"mt-{event['event_id']}", **event}
        self.events[topic].append(event)
        return event


def build(now: float, *, seed: int = 11, random_deals: int = 60, repeat_ratio: float = 0.1) -> Dataset:
    rng = random.Random(seed)
    data = Dataset(now=now)
    for rep, fields in REPS.items():
        data.profiles[rep] = [{"rep_id": rep, **fields, "updated_at": iso(now - 86400)}]
    data.profiles[MOVER] = [
        {"rep_id": MOVER, "team": "emea", "role": "sdr", "updated_at": iso(now - 2 * 86400)},
        {"rep_id": MOVER, "team": "apac", "role": "sdr", "timezone": "Asia/Singapore", "updated_at": iso(now - 1800)},
    ]

    # Hand-picked SPEC §2 edge cases.
    t = now - 3600
    data.add("calls", "prospect", "ann", t - 100, direction="outbound", outcome="no_answer")  # prospecting
    data.add("deal_stages", "prospect", "ann", t, stage="new", source="inbound_demo")
    data.add("emails", "prospect", "ann", t + 300, action="sent")  # exactly 300 s: bucket le=300
    data.add("deal_stages", "edge60", "cid", t, stage="new", source="outbound")
    data.add("calls", "edge60", "cid", t + 60, direction="outbound", outcome="connected")  # exactly 60 s
    data.add("deal_stages", "handoff", "ann", t - 600, stage="new", source="event")
    data.add("deal_stages", "handoff", "bob", t - 500, stage="contacted")  # owner changes before the touch
    data.add("calls", "handoff", "bob", t + 400, direction="outbound", outcome="voicemail")  # 1000 s, bob
    data.add("deal_stages", "lostone", "cid", t - 900, stage="new", source="partner")
    data.add("deal_stages", "lostone", "cid", t - 800, stage="lost", lost_reason="budget")
    data.add("deal_stages", "euro", "dee", t - 700, stage="new", amount=1000, currency="EUR", source="referral")
    data.add("emails", "euro", "dee", t - 650, action="sent", personalized=True)
    data.add("deal_stages", "euro", "dee", t - 100, stage="won", amount="2500.50", currency="EUR")
    data.add("deal_stages", "custom", "bob", t, stage="discovery", amount=700, source="webinar")  # unknown stage
    data.add("deal_stages", "ghost", "ghost", t, stage="new")  # rep without profile: team unassigned
    data.add("deal_stages", "special", "ann", t, stage="new", team="special-ops")  # team override
    data.add("deal_stages", "fresh", "cid", now - 30, stage="new", source="inbound_demo")  # awaiting, in SLA
    data.add("deal_stages", "stale", "ann", now - 7200, stage="new", source="inbound_content")  # breached
    data.add("deal_stages", "referred", "dee", now - 1500, stage="new", source="referral")  # 60 s SLA: breached
    # The rest of the catalog: qualification, proposal, deal types, reasons, slips, re-responses.
    data.add("deal_stages", "upsell", "bob", t - 2000, stage="new", source="partner", deal_type="upsell")
    data.add("calls", "upsell", "bob", t - 1990, direction="outbound", outcome="connected", wrap_up_seconds=30)
    data.add("emails", "upsell", "bob", t - 1900, action="received")  # opens a re-response wait...
    data.add("calls", "upsell", "bob", t - 1880, direction="inbound", outcome="connected")  # ...still open
    data.add("emails", "upsell", "bob", t - 1700, action="sent", personalized=True)  # closes it: 200 s
    data.add("deal_stages", "upsell", "bob", t - 1600, stage="qualified", amount=9000)
    data.add("deal_stages", "upsell", "bob", t - 1500, stage="qualified", amount=9500)  # same stage: no transition
    data.add("deal_stages", "upsell", "dee", t - 1000, stage="proposal", amount=12000, currency="USD")
    data.add("meetings", "upsell", "dee", t - 900, action="held")
    data.add("deal_stages", "upsell", "dee", t - 200, stage="won")  # no deal_type: stays upsell
    data.add("deal_stages", "late", "dee", t - 1200, stage="proposal", amount=3000, expected_close_date="2020-01-31")
    data.add("deal_stages", "late", "dee", t - 1100, stage="lost", lost_reason="timing")
    data.add("deal_stages", "slipping", "bob", t, stage="negotiation", amount=4000, expected_close_date="2020-02-29")
    data.add("deal_stages", "ontime", "bob", t, stage="negotiation", amount=1, expected_close_date="2999-12-31")
    data.add("deal_stages", "noreason", "ann", t - 30, stage="new", source="outbound")
    data.add("deal_stages", "noreason", "ann", t - 20, stage="lost")
    moved = now - MOVE_AGO_SECONDS
    data.add("deal_stages", "mover-before", MOVER, moved - 900, stage="new", source="event")
    data.add("calls", "mover-before", MOVER, moved - 600, direction="outbound", outcome="busy")  # emea
    data.add("deal_stages", "mover-after", MOVER, moved + 60, stage="new", source="event")
    data.add("emails", "mover-after", MOVER, moved + 120, action="sent")  # apac
    data.add("deal_stages", "mover-open", MOVER, moved - 300, stage="new", source="inbound_demo")  # awaiting: apac now
    data.add("calls", "referred", "dee", now - 1400, direction="inbound", outcome="connected")  # not a touch

    # Random deals, created 20 min to 3 h ago (far from any SLA edge at scrape time).
    stages = ["new", "contacted", "qualified", "proposal", "negotiation", "won", "lost"]
    for number in range(random_deals):
        deal = f"r{number:03d}"
        rep = rng.choice(list(REPS))
        created = now - rng.uniform(1200, 3 * 3600)
        data.add(
            "deal_stages",
            deal,
            rep,
            created,
            stage="new",
            source=rng.choice([None, "inbound_demo", "outbound", "referral"]),
        )
        at = created
        for _ in range(rng.randrange(0, 4)):
            at += rng.uniform(10, 400)
            if at > now - 60:
                break
            kind = rng.random()
            if kind < 0.4:
                data.add(
                    "calls",
                    deal,
                    rng.choice(list(REPS)),
                    at,
                    direction=rng.choice(["outbound", "inbound"]),
                    outcome=rng.choice(["connected", "no_answer", "busy"]),
                )
            elif kind < 0.7:
                data.add("emails", deal, rep, at, action=rng.choice(["sent", "received", "opened", "bounced"]))
            elif kind < 0.8:
                data.add("meetings", deal, rep, at, action=rng.choice(["booked", "held", "no_show"]))
            else:
                data.add(
                    "deal_stages",
                    deal,
                    rng.choice(list(REPS)),
                    at,
                    stage=rng.choice(stages),
                    amount=rng.choice([None, rng.randrange(1, 50) * 1000]),
                )

    # Everything as messages: profiles, events, some events again, then shuffled across topics.
    for rep, history in data.profiles.items():
        for profile in reversed(history):  # newest first: an older profile arriving late still applies
            data.messages.append(("crm.reps", rep.encode(), json.dumps(profile).encode()))
    originals = [(topic, event) for topic, items in data.events.items() for event in items]
    repeats = rng.sample(originals, int(len(originals) * repeat_ratio))
    ordered = originals + repeats
    rng.shuffle(ordered)
    data.events = {topic: [] for topic in TOPIC_OF}
    for topic, event in ordered:
        data.events[topic].append(event)
        data.messages.append((TOPIC_OF[topic], event["deal_id"].encode(), json.dumps(event).encode()))

    # One malformed message per rejection reason.
    good = {
        "event_id": "bad-1",
        "occurred_at": iso(now - 60),
        "deal_id": "badland",
        "rep_id": "ann",
        "call_id": "c",
        "direction": "outbound",
        "outcome": "connected",
        "talk_seconds": 5,
    }

    def variant(**changes: object) -> bytes:
        return json.dumps({**good, **changes}).encode()

    data.bad = [
        ("crm.calls", b"badland", b'{"event_id": "x",', "invalid_json"),
        ("crm.calls", b"badland", b'{"event_id": "\xff\xfe"}', "invalid_encoding"),
        ("crm.calls", b"badland", b"[1, 2, 3]", "not_an_object"),
        ("crm.calls", b"badland", variant(padding="x" * 70_000), "too_large"),
        (
            "crm.calls",
            b"badland",
            json.dumps({k: v for k, v in good.items() if k != "call_id"}).encode(),
            "missing_field",
        ),
        ("crm.calls", b"badland", variant(talk_seconds="10"), "wrong_type"),
        ("crm.calls", b"badland", variant(occurred_at="2024-01-01T10:00:00"), "bad_timestamp"),
        ("crm.calls", b"badland", variant(direction="sideways"), "invalid_value"),
        ("crm.calls", b"badland", variant(talk_seconds=90_000), "out_of_range"),
        ("crm.calls", b"badland", variant(occurred_at=iso(now + 3600)), "future_event"),
        ("crm.calls", b"elsewhere", variant(), "key_mismatch"),
        (
            "crm.deal-stages",
            b"badland",
            json.dumps(
                {
                    "event_id": "s",
                    "occurred_at": iso(now),
                    "deal_id": "badland",
                    "rep_id": "ann",
                    "stage": "new",
                    "amount": -5,
                }
            ).encode(),
            "out_of_range",
        ),
        (
            "crm.reps",
            b"ann",
            json.dumps({"rep_id": "ann", "team": "emea", "role": "boss", "updated_at": iso(now)}).encode(),
            "invalid_value",
        ),
    ]
    for topic, key, value, _ in data.bad:
        data.messages.insert(rng.randrange(len(data.profiles), len(data.messages) + 1), (topic, key, value))
    return data
