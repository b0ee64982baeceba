"""Output records go through an outbox with its own sender task (streams/kafka/batches.py): whoever
queues never waits for a produce round trip, and the records keep their order per partition."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from streams.kafka.batches import Outbox


class Producer:
    """aiokafka's producer as queue_keyed uses it: batches to a partition wait for the one before."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, int, list[bytes]]] = []
        self.acks: list[asyncio.Future] = []
        self.fail = fail
        self.client = SimpleNamespace(_wait_on_metadata=self._metadata)

    async def _metadata(self, topic: str) -> None:
        return None

    def _partition(self, topic: str, partition: object, key: bytes, *_: object) -> int:
        return int(key[-1:]) % 2

    async def send_batch(self, batch: list, topic: str, *, partition: int) -> asyncio.Future:
        await asyncio.sleep(0.01)  # the partition's previous batch leaves first
        self.sent.append((topic, partition, list(batch)))
        ack = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        return ack


class Batch(list):
    def append(self, **record: object) -> bool:  # type: ignore[override]
        super().append(record["value"])
        return True


async def test_records_queued_meanwhile_go_out_together_in_order_without_waiting() -> None:
    producer = Producer()
    producer.create_batch = Batch  # type: ignore[method-assign]
    outbox = Outbox(lambda: producer)  # type: ignore[arg-type,return-value]
    first = outbox.send([("alerts", b"d1", b"a1"), ("alerts", b"d2", b"a2")])
    second = outbox.send([("alerts", b"d1", b"a3"), ("responses", b"d1", b"r1")])
    assert producer.sent == [], "send queues, it does not wait for the producer"
    while len(producer.sent) < 3:
        await asyncio.sleep(0.01)
    assert sorted(producer.sent) == [("alerts", 0, [b"a2"]), ("alerts", 1, [b"a1", b"a3"]), ("responses", 1, [b"r1"])]
    assert not first.done() and not second.done(), "done only once acknowledged"
    for ack in producer.acks:
        ack.set_result(None)
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    third = outbox.send([("alerts", b"d1", b"a4")])  # the sender is still there for later records
    while len(producer.sent) < 4:
        await asyncio.sleep(0.01)
    producer.acks[-1].set_result(None)
    await asyncio.wait_for(third, 5)
    assert producer.sent[-1] == ("alerts", 1, [b"a4"])


async def test_a_failed_acknowledgement_fails_what_was_sent_with_it() -> None:
    producer = Producer()
    producer.create_batch = Batch  # type: ignore[method-assign]
    outbox = Outbox(lambda: producer)  # type: ignore[arg-type,return-value]
    sent = outbox.send([("alerts", b"d1", b"a1")])
    while not producer.acks:
        await asyncio.sleep(0.01)
    producer.acks[0].set_exception(RuntimeError("broker said no"))
    with pytest.raises(RuntimeError, match="broker said no"):
        await asyncio.wait_for(sent, 5)
