"""Input taken from Faust's consumer a fetched batch at a time, below the Stream.

Faust hands each fetched message to the Conductor, which wraps it in an Event and queues it to a
Stream; every event then travels channel → Stream → ack on its own (about 14k events/s with no
work at all). LeadPulse needs none of that per-event machinery: its processor folds batches. So
the worker's consumer (:class:`FetchedBatches`, mixed into the transport's consumer) takes the
records of the input topics out of each fetch, before Faust iterates them, and hands them to the
processor in one call; everything else (table changelogs during recovery, global tables' standby
updates) goes on through Faust's path. Faust still owns the group, the assignment, recovery,
commits and the web server.

Durability: a taken message is *acked* only after a processor flush that started after its fold
returned, i.e. once its effects are on the changelogs. Faust commits acked offsets only, so
``kill -9`` at any point redelivers what was not durable, and the offset watermarks in the state
make that harmless. One flush per commit window (a timer), sooner when many messages wait, and
before every rebalance and stop (:meth:`FetchedBatches.wait_empty`, which Faust calls before it
commits and gives partitions away: it waits for a fold under way, then flushes).

Taken records never become Faust ``Message`` objects: no per-message tracking, sensors or acks
(about a tenth of a catch-up's CPU, by the profile in BENCHMARKS.md). The records become :class:`InputMessage` at
once, and a flush acks their offsets in bulk, exactly as Faust's ``Consumer.ack`` would one by one.

Faust behaviours relied on (faust-streaming is pinned; ``tests/test_intake.py`` checks each):
- ``Consumer._wait_next_records(timeout)`` returns ``(records by TP, active partitions)`` and is the
  only source of ``Consumer.getmany``, which the Fetcher's drain loop iterates;
- ``Consumer.ack``'s bookkeeping (``_committed_offset``, ``_acked_index``, ``_acked``, ``_n_acked``
  under ``ack_lock``) and ``_read_offset``/``_add_gap``: an offset is committed once it and every
  offset before it is acked or a gap;
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
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from streams.gc_policy import collections_paused
from streams.ingest.deadletter import InputMessage

log = logging.getLogger(__name__)

EXIT_UNEXPECTED_ERROR = 70
FLUSH_AT_MESSAGES = 50_000  # taken and not yet durable: flush at once rather than at the window's end


Taken = dict[TP, list[int]]  # the offsets taken, per partition, in fetch order


def waiting(taken: Taken) -> int:
    return sum(map(len, taken.values()))


class BatchSink(Protocol):
    async def take(self, messages: Sequence[InputMessage]) -> None:
        """Fold a batch: visible at once, durable at the next flush."""

    async def flush(self) -> None:
        """Make everything taken so far durable."""


def raw_topic(app: faust.App, *names: str) -> faust.TopicT:
    return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


def to_input_message(record: Any) -> InputMessage:
    """An aiokafka ``ConsumerRecord`` as the processors see it."""
    timestamp = record.timestamp
    return InputMessage(record.topic, record.partition, record.offset, record.key, record.value, timestamp or None)


def describe(taken: Taken) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]@{min(o)}..{max(o)}" for tp, o in sorted(taken.items()) if o)


def exit_without_committing(what: str, taken: Taken | None = None) -> None:
    """Log the error at hand and exit at once: Kafka redelivers whatever was not committed.

    Any failure of a flush must end here: its cut keys are no longer marked dirty, so a worker
    that went on would commit later offsets while those deals' changes never reach the changelog."""
    log.critical(
        "unexpected error %s %d messages (%s); exiting without committing",
        what,
        waiting(taken or {}),
        describe(taken or {}) or "none taken",
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
        self._taken: Taken = {}  # folded, not yet acked
        self._folding = 0  # takes under way
        self._folded = asyncio.Event()  # set while no take is under way
        self._folded.set()
        self._flushing = asyncio.Lock()
        for name in self.topics:
            app.topics.add(raw_topic(app, name))  # subscribe, as iterating an agent's topic would
        app.timer(flush_every)(self._flush_timer)

    async def take(self, messages: list[InputMessage], taken: Taken) -> None:
        """Fold ``messages`` (whose offsets per partition are ``taken``); acked at a later flush."""
        self._folding += 1
        self._folded.clear()
        try:
            with collections_paused():
                await self.sink.take(messages)
        except Exception:
            exit_without_committing("folding", taken)
        finally:
            self._folding -= 1
            if not self._folding:
                self._folded.set()
        for tp, offsets in taken.items():
            self._taken.setdefault(tp, []).extend(offsets)
        if waiting(self._taken) >= FLUSH_AT_MESSAGES:
            await self.flush()

    async def flush(self) -> None:
        """Flush what was folded and ack it: its offsets may be committed from now on."""
        async with self._flushing:
            taken, self._taken = self._taken, {}
            try:
                await self.sink.flush()
            except Exception:
                exit_without_committing("flushing", taken)
            if taken:
                self.app.consumer.ack_taken(taken)  # type: ignore[attr-defined]

    async def drain(self) -> None:
        """Wait for the folds under way, then flush: nothing taken is left unacked."""
        await self._folded.wait()
        await self.flush()

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
        messages: list[InputMessage] = []
        taken: Taken = {}
        for tp, tp_records in records.items():
            if tp.topic not in intake.topics:
                rest[tp] = tp_records
            elif flowing and (active is None or tp in active or tp in self._buffered_partitions):
                taken[tp] = await self._take(tp, tp_records, messages)
            else:
                # Fetched while the flow stopped (a rebalance began) or for a partition paused
                # meanwhile (recovery resumes the input partitions while a fetch is under way).
                # Faust drops such records and counts on seeking every partition to its committed
                # offset, which fails as a whole when one partition was unassigned meanwhile
                # (IllegalStateError, logged and ignored) and leaves a partition without a committed
                # offset where it was: past them. The next records then look like a gap, which is
                # committable: they would be lost. Seek back, so they are fetched again.
                await self._fetch_again(tp, tp_records[0].offset)
        if messages:
            await intake.take(messages, taken)
        return rest, active

    async def _fetch_again(self, tp: TP, offset: int) -> None:
        consumer: Any = self  # a Faust Consumer (this class is mixed into one)
        if tp in consumer.assignment():
            with contextlib.suppress(IllegalStateError):  # unassigned meanwhile: its next owner reads it
                await consumer.seek(tp, offset)

    async def _take(self, tp: TP, records: list[Any], messages: list[InputMessage]) -> list[int]:
        """The records Faust's drain loop would deliver, appended to ``messages`` as it would read
        them (gaps noted, records below what was read dropped); their offsets."""
        consumer: Any = self
        read = self._read_offset[tp]
        first, last = records[0].offset, records[-1].offset
        if (read is None or first == read + 1) and last - first == len(records) - 1:  # the usual: no gap
            messages += map(to_input_message, records)
            self._read_offset[tp] = last
            return list(range(first, last + 1))
        offsets = []
        for record in records:
            offset = record.offset
            if read is not None and offset < read:
                continue  # below what was read: Faust drops these too
            if read is not None and offset - read > 1:
                await consumer._add_gap(tp, read + 1, offset - 1)  # the missing offsets (compacted away): committable
            messages.append(to_input_message(record))
            offsets.append(offset)
            read = offset
        self._read_offset[tp] = read
        return offsets

    def ack_taken(self, taken: Taken) -> None:
        """Ack the offsets, in order, as Faust's ``Consumer.ack`` would one message at a time."""
        consumer: Any = self
        with ack_lock:
            for tp, offsets in taken.items():
                if not self.app.topics.acks_enabled_for(tp.topic):
                    continue
                committed = consumer._committed_offset[tp]
                index = consumer._acked_index[tp]
                new = [o for o in offsets if (committed is None or o >= committed) and o not in index]
                index.update(new)
                consumer._acked[tp].extend(new)
                consumer._n_acked += len(new)
            notify(consumer._waiting_for_ack)

    async def wait_empty(self) -> None:
        """Before Faust waits for every message it tracks to be acked (rebalance, stop): the folds
        under way end and a flush acks everything taken."""
        intake = _INTAKES.get(self.app)
        if intake is not None:
            await intake.drain()
        await super().wait_empty()  # type: ignore[misc]
