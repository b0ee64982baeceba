"""Hostile input at scale: every message that breaks a rule is dead-lettered with a reason that
rule allows, the good events in between count exactly, and nothing crashes.

The decoder first, in-process, on thousands of hostile messages (a hypothesis property); then a
real worker on a real broker, 10,000 hostile messages and good events between them."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import InputTopic
from streams.broker import EmbeddedBroker
from streams.decode import Rejection, decode
from tests.harness import WorkerProcess, read_topic, total, wait_until
from tests.hostile import CALLS, DEALS, Hostile, call, encoded, hostile

TOPIC_OF = {CALLS: InputTopic.CALLS}
BATCHES, BATCH_HOSTILE, BATCH_GOOD = 50, 200, 20  # 10,000 hostile messages, 1,000 good ones


@settings(max_examples=1500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(hostile())
def test_the_decoder_rejects_every_hostile_message_with_an_allowed_reason(message: Hostile) -> None:
    result = decode(TOPIC_OF[message.topic], message.key, message.value, now=time.time(), max_future_skew_seconds=300)
    assert isinstance(result, Rejection), (message.kind, result)
    assert result.reason in message.reasons, (message.kind, result)


@pytest.mark.integration
def test_ten_thousand_hostile_messages_are_dead_lettered_and_the_good_ones_count_exactly(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    worker = WorkerProcess(broker.bootstrap, "fuzz", tmp_path / "worker").start()
    sent: dict[tuple[int, int], Hostile] = {}  # (partition, offset) of each hostile message
    good: Counter[str] = Counter()  # good calls per deal
    batches = 0

    @settings(
        max_examples=BATCHES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(hostile(), min_size=BATCH_HOSTILE, max_size=BATCH_HOSTILE))
    def one_batch(messages: list[Hostile]) -> None:
        nonlocal batches
        goods = [call(DEALS[n % len(DEALS)], f"good-{batches}-{n}") for n in range(BATCH_GOOD)]
        placed = asyncio.run(produce_between(broker.bootstrap, messages, list(goods)))
        sent.update(placed)
        good.update(value["deal_id"] for value in goods)
        batches += 1
        expected = len(sent) + sum(good.values())
        wait_until(
            lambda: total(worker.scrape(), "leadpulse_events_processed_total") == expected,
            60,
            f"{expected} messages processed after batch {batches}",
        )

    try:
        one_batch()
        figures = worker.scrape()
        assert worker.process is not None and worker.process.poll() is None, "the worker exited"
    finally:
        worker.stop()
    assert len(sent) >= 10_000
    assert total(figures, "leadpulse_events_rejected_total") == len(sent)
    assert total(figures, "leadpulse_calls_total") == sum(good.values())
    assert total(figures, "leadpulse_events_duplicate_total") == 0
    assert sum(good.values()) == batches * BATCH_GOOD
    letters = asyncio.run(read_topic(broker.bootstrap, "leadpulse.dead-letter", timeout=120))
    assert len(letters) == len(sent), "each hostile message is dead-lettered once"
    wrong = []
    for letter in letters:
        record = json.loads(letter.value)
        message = sent[(record["partition"], record["offset"])]
        if record["reason"] not in message.reasons or record["topic"] != message.topic:
            wrong.append((message.kind, record["reason"], record["detail"]))
        assert record["value_bytes"] == len(message.value or b"")
    assert not wrong, wrong[:10]
    log = (worker.data_dir / "worker.log").read_text()
    assert "ERROR" not in log and "CRITICAL" not in log
    assert Counter(message.kind for message in sent.values())["megabyte"] > 0


async def produce_between(bootstrap: str, messages: list[Hostile], goods: list[dict]) -> dict[tuple[int, int], Hostile]:
    """Produce the hostile messages with the good events spread between them; returns where each
    hostile one landed."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_request_size=4 << 20)
    await producer.start()
    try:
        every = max(1, len(messages) // max(1, len(goods)))
        pending = []
        for number, message in enumerate(messages):
            pending.append((message, await producer.send(message.topic, message.value, key=message.key)))
            if number % every == 0 and goods:
                value = goods.pop()
                await producer.send(CALLS, encoded(value), key=value["deal_id"].encode())
        for value in goods:
            await producer.send(CALLS, encoded(value), key=value["deal_id"].encode())
        await producer.flush()
        return {((metadata := await future).partition, metadata.offset): message for message, future in pending}
    finally:
        await producer.stop()
