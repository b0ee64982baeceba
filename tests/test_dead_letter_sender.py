"""The dead-letter sender: a record that the topic does not take waits and is retried, never dropped."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiokafka.errors import KafkaTimeoutError

from streams.outputs.dead_letters import DeadLetterSender


class Topic:
    """A dead-letter topic that refuses records while ``down``, and may hang an attempt."""

    def __init__(self, *, down: bool = False, hang_first: bool = False) -> None:
        self.down = down
        self.hang_first = hang_first
        self.attempts = 0
        self.taken: list[tuple[bytes | None, bytes]] = []

    async def send(self, key: bytes | None, value: bytes) -> object:
        self.attempts += 1
        if self.hang_first and self.attempts == 1:
            await asyncio.sleep(3600)
        if self.down:
            raise KafkaTimeoutError("the topic is unavailable")
        self.taken.append((key, value))
        return len(self.taken) - 1


def sender(topic: Topic, stopping: bool = False) -> DeadLetterSender:
    return DeadLetterSender(
        topic.send,
        topic="leadpulse.dead-letter",
        stopping=lambda: stopping,
        attempt_seconds=0.05,
        first_retry_seconds=0.01,
        max_retry_seconds=0.02,
    )


async def test_a_dead_letter_waits_while_the_topic_is_down_and_is_sent_once_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = Topic(down=True)
    dead_letters = sender(topic)
    with caplog.at_level(logging.WARNING):
        pending = [asyncio.ensure_future(dead_letters.send(b"k", f"v{n}".encode())) for n in range(3)]
        while topic.attempts < 9:  # every record retried a few times
            await asyncio.sleep(0.01)
        assert dead_letters.waiting == 3 and not any(task.done() for task in pending)
        topic.down = False
        offsets = await asyncio.gather(*pending)
    assert sorted(value for _key, value in topic.taken) == [b"v0", b"v1", b"v2"]
    assert sorted(offsets) == [0, 1, 2] and dead_letters.waiting == 0
    said = [record.getMessage() for record in caplog.records]
    assert sum("does not take records (KafkaTimeoutError: " in line for line in said) == 1  # once per outage
    assert sum("takes records again" in line for line in said) == 1


async def test_an_attempt_that_hangs_is_abandoned_and_retried() -> None:
    topic = Topic(hang_first=True)
    assert await sender(topic).send(None, b"v") == 0
    assert topic.attempts == 2 and topic.taken == [(None, b"v")]


async def test_a_stopping_worker_gives_up_so_that_nothing_after_the_bad_event_is_committed() -> None:
    topic = Topic(down=True)
    dead_letters = sender(topic, stopping=True)
    with pytest.raises(KafkaTimeoutError):
        await dead_letters.send(b"k", b"v")
    assert topic.taken == [] and dead_letters.waiting == 0


async def test_a_long_outage_is_said_again(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("streams.outputs.dead_letters.STILL_FAILING_SAID_EVERY_SECONDS", 0.0)
    topic = Topic(down=True)
    dead_letters = sender(topic)
    with caplog.at_level(logging.ERROR):
        pending = asyncio.ensure_future(dead_letters.send(b"k", b"v"))
        while topic.attempts < 3:
            await asyncio.sleep(0.01)
        topic.down = False
        await pending
    said = [record.getMessage() for record in caplog.records]
    assert sum("still does not take records" in line and "1 dead letters wait" in line for line in said) >= 2


async def test_a_stop_ends_the_wait_at_once() -> None:
    topic = Topic(down=True)
    stopping = False
    dead_letters = DeadLetterSender(
        topic.send,
        topic="leadpulse.dead-letter",
        stopping=lambda: stopping,
        attempt_seconds=0.05,
        first_retry_seconds=60,  # a backoff the stop must not wait out
    )
    pending = asyncio.ensure_future(dead_letters.send(b"k", b"v"))
    while topic.attempts < 1:
        await asyncio.sleep(0.01)
    stopping = True
    with pytest.raises(KafkaTimeoutError):
        await asyncio.wait_for(pending, 2)  # not the 60 s backoff
    assert dead_letters.waiting == 0 and topic.taken == []
