"""The benchmark's input: the simulator's history, or exactly N open deals; producing it."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaProducer

from streams.config import load_settings
from streams.kafka.topics import ensure_topics
from streams.simulator.floor import CrmSimulation, Message
from streams.state.codec import exact
from streams.worker.engine import changelog_topics

HOUR, DAY = 3600.0, 86400.0


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


def simulated(seconds: float, rate: float, seed: int = 42) -> list[Message]:
    """The simulator's rep profiles and ``seconds`` of history up to now, at ``rate`` events/s."""
    now = time.time()
    simulation = CrmSimulation(load_settings(), seed=seed, rate=rate)
    return [*simulation.profiles(now - seconds - 60), *simulation.backfill(now - seconds, now)]


# Deal events the simulator makes in ``seconds`` of history at ``rate`` events/s: about
# EVENT_SHARE * rate * (seconds - TAIL_SECONDS). Lifecycles are scheduled at arrival, so the last
# leads' later events lie beyond now (measured at 20 events/s, seed 42: 340,900 in 6 hours,
# 1,083,255 in 18 hours).
EVENT_SHARE, TAIL_SECONDS = 0.859, 1765.0


def seconds_for(events: int, rate: float) -> float:
    """Seconds of history that hold about ``events`` deal events at ``rate``."""
    return events / (EVENT_SHARE * rate) + TAIL_SECONDS


def simulated_events(events: int, rate: float, seed: int = 42) -> list[Message]:
    """The rep profiles and exactly ``events`` deal events of the simulator's history up to now
    (a little more history is simulated, then its last events, the newest minutes, are left out)."""
    reps = load_settings().topics.reps
    seconds = seconds_for(events, rate) * 1.01
    while True:
        messages = simulated(seconds, rate, seed)
        deal_events = sum(1 for message in messages if message.topic != reps)
        if deal_events >= events:
            break
        seconds *= events / deal_events * 1.02
    kept, taken = [], 0
    for message in messages:
        if message.topic == reps:
            kept.append(message)
        elif taken < events:
            kept.append(message)
            taken += 1
    return kept


def open_deals(count: int, seed: int = 7) -> list[Message]:
    """Exactly ``count`` open deals: each a new inbound lead, its first touch, and for half of
    them a qualified stage. Created between four days and 26 hours ago, so the SLA steps they
    crossed lie beyond the alert lookback (a day): the records do not depend on arrival order."""
    rng = random.Random(seed)
    topics = load_settings().topics
    sdrs = [f"sdr-{team}-{n}" for team in ("emea", "americas", "apac") for n in range(1, 5)]
    now = time.time()
    timed: list[tuple[float, Message]] = []

    def event(deal: str, sdr: str, at: float, topic: str, kind: str, **fields: object) -> None:
        value = {"event_id": f"{kind}-{deal}", "occurred_at": iso(at), "deal_id": deal, "rep_id": sdr, **fields}
        timed.append((at, Message(topic, deal.encode(), exact(orjson.dumps(value)))))  # 2.5M of them at 1M deals

    for number in range(1, count + 1):
        deal, sdr = f"deal-{number:07d}", sdrs[number % len(sdrs)]
        created = now - 4 * DAY + (4 * DAY - 26 * HOUR) * rng.random()
        touch = created + min(rng.lognormvariate(4.5, 1.0), 4 * HOUR)
        amount = rng.randrange(5, 120) * 1000
        event(deal, sdr, created, topics.deal_stages, "new", stage="new", source="inbound_demo", amount=amount)
        if rng.random() < 0.6:
            fields = {"direction": "outbound", "outcome": "connected", "talk_seconds": rng.randrange(30, 900)}
            event(deal, sdr, touch, topics.calls, "call", call_id=f"c-{deal}", **fields)
        else:
            event(deal, sdr, touch, topics.emails, "mail", email_id=f"m-{deal}", action="sent")
        if rng.random() < 0.5:
            event(deal, sdr, touch + rng.uniform(600, 7200), topics.deal_stages, "q", stage="qualified")
    timed.sort(key=lambda pair: pair[0])
    return [message for _, message in timed]


def prepare(bootstrap: str, *app_ids: str) -> None:
    """Every topic the apps' workers use, created before anything is produced."""
    for app_id in app_ids:
        settings = load_settings(broker=bootstrap, app_id=app_id)
        deal_changelogs, global_changelogs = changelog_topics(settings)
        asyncio.run(
            ensure_topics(settings, bootstrap, deal_changelogs=deal_changelogs, global_changelogs=global_changelogs)
        )


async def produce(bootstrap: str, messages: list[Message]) -> float:
    """As fast as the broker takes them; returns the seconds it took."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20, acks=1)
    await producer.start()
    started = time.perf_counter()
    for message in messages:
        await producer.send(message.topic, message.value, key=message.key)
    await producer.flush()
    await producer.stop()
    return time.perf_counter() - started


def live(value: bytes) -> bytes:
    """The event as if it happened now (malformed ones stay as they are)."""
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    if isinstance(event, dict) and "occurred_at" in event:
        event["occurred_at"] = iso(time.time())
    return orjson.dumps(event)


def produce_at(bootstrap: str, messages: list[Message], rate: float) -> None:
    """At a steady ``rate`` messages/s, paced every 10 ms, each stamped with the moment it is sent:
    a live floor, not a replay (whose overdue leads would all owe alerts at once). Run in a process
    of its own."""

    async def paced() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=1 << 18, acks=1)
        await producer.start()
        began, sent = time.perf_counter(), 0
        while sent < len(messages):
            due = min(len(messages), int((time.perf_counter() - began) * rate) + 1)
            for message in messages[sent:due]:
                await producer.send(message.topic, live(message.value), key=message.key)
            sent = due
            await asyncio.sleep(0.01)
        await producer.flush()
        await producer.stop()

    asyncio.run(paced())
