"""Input taken from Faust's consumer a fetched batch at a time, below the Stream.

Faust hands each fetched message to the Conductor, which wraps it in an Event and queues it to a
Stream; every event then travels channel → Stream → ack on its own (about 14k events/s with no
work at all). LeadPulse needs none of that per-event machinery: its processor folds batches. So
the worker's consumer (:class:`FetchedBatches`, mixed into the transport's consumer) takes the
records of the input topics out of each fetch, before Faust iterates them, and hands them to the
processor in one call; everything else (table changelogs during recovery, global tables' standby
updates) goes on through Faust's path. Faust still owns the group, the assignment, recovery,
commits and the web server.

Durability: taken messages are *tracked* (Faust's graceful stop and rebalance wait for them) and
*acked* only after a processor flush that started after they were taken has returned, i.e. once
their effects are on the changelogs. Faust commits acked offsets only, so ``kill -9`` at any point
redelivers what was not durable, and the offset watermarks in the state make that harmless. One
flush per commit window (a timer), sooner when many messages wait, and before every rebalance and
stop (:meth:`FetchedBatches.wait_empty`, which Faust calls before it commits and gives partitions
away).

Faust behaviours relied on (faust-streaming is pinned; ``tests/test_intake.py`` checks each):
- ``Consumer._wait_next_records(timeout)`` returns ``(records by TP, active partitions)`` and is the
  only source of ``Consumer.getmany``, which the Fetcher's drain loop iterates;
- ``Consumer.track_message``/``ack`` and ``_read_offset``/``_add_gap`` are the drain loop's own
  bookkeeping: an offset is committed once it and every offset before it is acked or a gap;
- ``Consumer.wait_empty`` runs before offsets are committed on rebalance and stop;
- ``app.topics.add(topic)`` subscribes a topic, and its acks are enabled once subscribed.

An unexpected error (a bug, not bad input) is logged with topic, partitions and offsets and the
worker exits at once *without committing*: raising would let Faust go on and commit later batches'
offsets past the failed one. Kafka redelivers the batch to the next worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import faust
from aiokafka.errors import IllegalStateError
from faust.types import TP, Message

from streams.ingest.deadletter import InputMessage

log = logging.getLogger(__name__)

EXIT_UNEXPECTED_ERROR = 70
FLUSH_AT_MESSAGES = 50_000  # taken and not yet durable: flush at once rather than at the window's end


class BatchSink(Protocol):
    async def take(self, messages: Sequence[InputMessage]) -> None:
        """Fold a batch: visible at once, durable at the next flush."""

    async def flush(self) -> None:
        """Make everything taken so far durable."""


def raw_topic(app: faust.App, *names: str) -> faust.TopicT:
    return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


def to_input_message(message: Message) -> InputMessage:
    return InputMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
    )


def describe(messages: Sequence[Message]) -> str:
    spans: dict[tuple[str, int], list[int]] = {}
    for message in messages:
        spans.setdefault((message.topic, message.partition), []).append(message.offset)
    return ", ".join(f"{topic}[{partition}]@{min(o)}..{max(o)}" for (topic, partition), o in sorted(spans.items()))


def exit_without_committing(what: str, messages: Sequence[Message] = ()) -> None:
    """Log the error at hand and exit at once: Kafka redelivers whatever was not committed.

    Any failure of a flush must end here: its cut keys are no longer marked dirty, so a worker
    that went on would commit later offsets while those deals' changes never reach the changelog."""
    log.critical(
        "unexpected error %s %d messages (%s); exiting without committing",
        what,
        len(messages),
        describe(messages) or "none taken",
        exc_info=True,
    )
    logging.shutdown()
    os._exit(EXIT_UNEXPECTED_ERROR)


class BatchIntake:
    """The input topics' messages, taken in fetched batches and acked once flushed."""

    def __init__(self, app: faust.App, topics: Iterable[str], sink: BatchSink, flush_every: float) -> None:
        self.app = app
        self.topics = frozenset(topics)
        self.sink = sink
        self._taken: list[Message] = []  # taken, not yet acked
        self._flushing = asyncio.Lock()
        for name in self.topics:
            app.topics.add(raw_topic(app, name))  # subscribe, as iterating an agent's topic would
        app.timer(flush_every)(self._flush_timer)

    async def take(self, messages: list[Message]) -> None:
        try:
            await self.sink.take([to_input_message(message) for message in messages])
        except Exception:
            exit_without_committing("folding", messages)
        self._taken.extend(messages)
        if len(self._taken) >= FLUSH_AT_MESSAGES:
            await self.flush()

    async def flush(self) -> None:
        """Flush what was taken and ack it: its offsets may be committed from now on."""
        async with self._flushing:
            taken, self._taken = self._taken, []
            try:
                await self.sink.flush()
            except Exception:
                exit_without_committing("flushing", taken)
            ack = self.app.consumer.ack
            for message in taken:
                ack(message)

    async def _flush_timer(self) -> None:
        # Shielded: a stop that cancels the timer lets a started flush ack what it made durable.
        await asyncio.shield(self.flush())


_INTAKES: weakref.WeakKeyDictionary[Any, BatchIntake] = weakref.WeakKeyDictionary()


def attach_intake(app: faust.App, topics: Iterable[str], sink: BatchSink, *, flush_every: float) -> BatchIntake:
    """Take ``topics`` through ``sink`` in fetched batches (the app's transport must be LeadPulse's)."""
    intake = _INTAKES[app] = BatchIntake(app, topics, sink, flush_every)
    return intake


class FetchedBatches:
    """Mixed into Faust's consumer: diverts the intake's topics from each fetch to the intake."""

    app: Any
    flow_active: bool
    should_stop: bool
    _read_offset: Any
    _buffered_partitions: set[TP]

    async def _wait_next_records(self, timeout: float) -> tuple[Mapping[TP, list[Any]] | None, set[TP] | None]:
        records, active = await super()._wait_next_records(timeout)  # type: ignore[misc]
        intake = _INTAKES.get(self.app)
        if not records or intake is None:
            return records, active
        flowing = self.flow_active and not self.should_stop
        rest: dict[TP, list[Any]] = {}
        taken: list[Message] = []
        for tp, tp_records in records.items():
            if tp.topic not in intake.topics:
                rest[tp] = tp_records
            elif flowing and (active is None or tp in active or tp in self._buffered_partitions):
                taken += await self._track(tp, tp_records)
            else:
                # Fetched while the flow stopped (a rebalance began) or for a partition paused
                # meanwhile (recovery resumes the input partitions while a fetch is under way).
                # Faust drops such records and counts on seeking every partition to its committed
                # offset, which fails as a whole when one partition was unassigned meanwhile
                # (IllegalStateError, logged and ignored) and leaves a partition without a committed
                # offset where it was: past them. The next records then look like a gap, which is
                # committable: they would be lost. Seek back, so they are fetched again.
                await self._fetch_again(tp, tp_records[0].offset)
        if taken:
            await intake.take(taken)
        return rest, active

    async def _fetch_again(self, tp: TP, offset: int) -> None:
        consumer: Any = self  # a Faust Consumer (this class is mixed into one)
        if tp in consumer.assignment():
            with contextlib.suppress(IllegalStateError):  # unassigned meanwhile: its next owner reads it
                await consumer.seek(tp, offset)

    async def _track(self, tp: TP, records: list[Any]) -> list[Message]:
        """The records Faust's drain loop would deliver, tracked as it would track them."""
        consumer: Any = self
        read = self._read_offset[tp]
        messages = []
        for record in records:
            offset = record.offset
            if read is not None and offset < read:
                continue  # below what was read: Faust drops these too
            if read is not None and offset - read > 1:
                await consumer._add_gap(tp, read + 1, offset - 1)  # the missing offsets (compacted away): committable
            message = consumer._to_message(tp, record)
            consumer.track_message(message)
            messages.append(message)
            read = offset
        self._read_offset[tp] = read
        return messages

    async def wait_empty(self) -> None:
        """Before Faust waits for every taken message to be acked (rebalance, stop): flush."""
        intake = _INTAKES.get(self.app)
        if intake is not None:
            await intake.flush()
        await super().wait_empty()  # type: ignore[misc]
