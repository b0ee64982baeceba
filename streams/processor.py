"""Batch processing of input messages, free of Faust: decode, dead-letter, fold, write.

A batch's messages are decoded and validated one by one; the valid ones are grouped by deal
and each deal is folded once and written once, whatever number of its events the batch holds
(one changelog message per changed deal, not per event). Writes go through
:meth:`KeyStore.write_many`, which returns once the batch's writes are durable; ``process_*``
returns only when every write of the batch is, so the caller may then let the batch's offsets
be committed.

Redelivery is harmless everywhere: a deal record and an intake tally each carry the highest
offset they have absorbed. A rejected message is dead-lettered before its tally is written,
so a crash in between re-sends the dead letter (at-least-once) rather than losing it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from schemas.events import DealEvent, InputTopic, RepProfile
from schemas.outputs import DeadLetterRecord
from streams.codec import (
    IntakeTally,
    decode_deal,
    decode_profile_history,
    encode_deal,
    encode_profile,
    encode_profile_history,
    profile_from_json,
)
from streams.config import Settings
from streams.deadletter import InputMessage, dead_letter
from streams.decode import Rejection, decode
from streams.fold.deals import DealState, Delivery, fold
from streams.fold.facts import DealTopic, fact_from_event
from streams.fold.outputs import Plan
from streams.fold.profiles import History, merge
from streams.rollups import Rollups

DEAL_TOPIC_OF = {
    InputTopic.DEAL_STAGES: DealTopic.DEAL_STAGES,
    InputTopic.CALLS: DealTopic.CALLS,
    InputTopic.EMAILS: DealTopic.EMAILS,
    InputTopic.MEETINGS: DealTopic.MEETINGS,
}


Write = tuple[bytes, bytes | None, int]  # key, value (None deletes), source partition


class KeyStore(Protocol):
    """A table as the processors use it: bytes in, bytes out, writes placed in a partition."""

    def get(self, key: bytes) -> bytes | None: ...

    async def write_many(self, writes: list[Write]) -> None:
        """Apply the writes and return once they are durable."""


PublishDeadLetter = Callable[[DeadLetterRecord, bytes | None], Awaitable[object]]


class OutputPlanner(Protocol):
    """What a batch asks of the output topics (:class:`streams.outputs.emitter.Outputs`)."""

    def plan(self, partition: int, state: DealState, now: float) -> Plan: ...

    async def publish(self, plans: Sequence[Plan]) -> None: ...


def intake_key(topic: str, partition: int) -> bytes:
    return f"{topic}:{partition}".encode()


class _Intake:
    """A batch's view of the intake tallies of the topic-partitions it reads.

    ``written`` (global tables only) remembers the last tally this worker wrote: a global table
    also applies its own changelog as it reads it back, so for a moment the table can hold an
    older tally than the one just written; the one with the highest offset is the current one.
    """

    def __init__(self, store: KeyStore, written: dict[tuple[str, int], IntakeTally] | None = None) -> None:
        self.store = store
        self.written = written
        self.tallies: dict[tuple[str, int], IntakeTally] = {}

    def count(self, message: InputMessage, reason: str | None, event_at: float | None = None) -> bool:
        """Count a message; False when this tally has counted it before (a redelivery)."""
        where = (message.topic, message.partition)
        tally = self.tallies.get(where)
        if tally is None:
            tally = IntakeTally.decode(self.store.get(intake_key(*where)))
            mine = None if self.written is None else self.written.get(where)
            if mine is not None and mine.offset > tally.offset:
                tally = IntakeTally.decode(mine.encode())
            self.tallies[where] = tally
        return tally.count(message.offset, reason, event_at)

    async def write(self) -> None:
        await self.store.write_many(
            [
                (intake_key(topic, partition), tally.encode(), partition)
                for (topic, partition), tally in self.tallies.items()
            ]
        )
        if self.written is not None:
            self.written.update(self.tallies)


class BatchProcessor:
    """Turns batches of input messages into table writes, dead letters and aggregate updates."""

    def __init__(
        self,
        settings: Settings,
        *,
        deals: KeyStore,
        intake: KeyStore,
        rep_profiles: KeyStore,
        rep_intake: KeyStore,
        rollups: Rollups,
        publish_dead_letter: PublishDeadLetter,
        clock: Callable[[], float] = time.time,
        before_deal_batch: Callable[[], object] | None = None,
        outputs: OutputPlanner | None = None,
    ) -> None:
        self.settings = settings
        self.deals = deals
        self.intake = intake
        self.rep_profiles = rep_profiles
        self.rep_intake = rep_intake
        self.rollups = rollups
        self.publish_dead_letter = publish_dead_letter
        self.clock = clock
        self.before_deal_batch = before_deal_batch
        self.outputs = outputs
        # What this worker last wrote to the global tables (see _Intake and process_rep_messages).
        self._rep_tallies: dict[tuple[str, int], IntakeTally] = {}
        self._rep_histories: dict[bytes, tuple[int, History] | None] = {}
        # Deal records are read, folded and written under this lock, by batches and by the
        # output emitter alike, so neither overwrites what the other just wrote.
        self.lock = asyncio.Lock()
        self.topic_of = {settings.topics.input_name(topic): topic for topic in InputTopic}

    def _accept(
        self, message: InputMessage, now: float, intake: _Intake, dead_letters: list[Awaitable[object]]
    ) -> object | None:
        """The validated event; or None after counting and dead-lettering a rejection (once).

        "Ahead of the wall clock" is judged against the message's own Kafka timestamp when it
        has one (its wall clock when produced), so a redelivery is judged the same way.
        """
        reference = now if message.timestamp_ms is None else min(now, message.timestamp_ms / 1000)
        event = decode(
            self.topic_of[message.topic],
            message.key,
            message.value,
            now=reference,
            max_future_skew_seconds=self.settings.max_future_skew_seconds,
        )
        if isinstance(event, Rejection):
            if intake.count(message, event.reason):
                dead_letters.append(self.publish_dead_letter(dead_letter(message, event, now), message.key))
            return None
        stamp = event.occurred_at if isinstance(event, DealEvent) else event.updated_at  # type: ignore[attr-defined]
        intake.count(message, None, stamp.timestamp())
        return event

    async def process_deal_messages(self, messages: Sequence[InputMessage]) -> None:
        """Process a batch from the deal-scoped topics (any mix of topics and partitions)."""
        async with self.lock:
            if self.before_deal_batch is not None:
                self.before_deal_batch()
            await self._process_deal_messages(messages)

    async def _process_deal_messages(self, messages: Sequence[InputMessage]) -> None:
        now = self.clock()
        intake = _Intake(self.intake)
        dead_letters: list[Awaitable[object]] = []
        writes: list[Write] = []
        by_deal: dict[str, tuple[int, list[Delivery]]] = {}  # deal -> (first partition seen, deliveries)
        for message in messages:
            event = self._accept(message, now, intake, dead_letters)
            if event is None:
                continue
            assert isinstance(event, DealEvent)
            topic = DEAL_TOPIC_OF[self.topic_of[message.topic]]
            delivery = Delivery(fact_from_event(event), topic, message.offset, message.partition)
            by_deal.setdefault(event.deal_id, (message.partition, []))[1].append(delivery)
        owing: list[Write] = []  # deals whose records mark outputs sent: written once those are acknowledged
        plans: list[Plan] = []
        for deal_id, (partition, deliveries) in by_deal.items():
            key = deal_id.encode()
            stored = self.deals.get(key)
            if stored is None:
                before = DealState(deal_id)
            else:
                partition, before = decode_deal(stored)  # a deal stays in the partition that holds it
            result = fold(before, deliveries)
            if not result.changed:
                continue
            state = result.state
            owed = None if self.outputs is None else self.outputs.plan(partition, state, now)
            owes = owed is not None and owed.owed
            if owes:
                plans.append(owed)
                state = owed.state
            record = encode_deal(partition, state)
            (owing if owes else writes).append((key, record, partition))
            self.rollups.apply(partition, before, result, (len(stored or b""), len(record)))
        publishing = [self.outputs.publish(plans)] if self.outputs is not None and plans else []
        await asyncio.gather(self.deals.write_many(writes), *publishing, *dead_letters)
        if owing:
            await self.deals.write_many(owing)
        await intake.write()

    async def process_rep_messages(self, messages: Sequence[InputMessage]) -> None:
        """Process a batch from ``crm.reps`` into each rep's profile history
        (:func:`streams.fold.profiles.merge`: any arrival order gives the same history)."""
        now = self.clock()
        intake = _Intake(self.rep_intake, self._rep_tallies)
        dead_letters: list[Awaitable[object]] = []
        histories: dict[bytes, tuple[int, History] | None] = {}  # None: deleted
        for message in messages:
            if message.value is None and message.key is not None:
                # A tombstone on the compacted topic removes the rep and its history.
                if intake.count(message, None):
                    histories[message.key] = None
                continue
            profile = self._accept(message, now, intake, dead_letters)
            if profile is None:
                continue
            assert isinstance(profile, RepProfile)
            key = profile.rep_id.encode()
            if key not in histories:
                histories[key] = self._current_history(key)
            current = histories[key]
            history = () if current is None else current[1]
            histories[key] = (message.partition, merge(history, profile_from_json(encode_profile(profile))))
        writes: list[Write] = []
        for key, entry in histories.items():
            stored = self.rep_profiles.get(key)
            record = None if entry is None else encode_profile_history(*entry)
            if record != stored:
                writes.append((key, record, 0 if entry is None else entry[0]))
        await asyncio.gather(self.rep_profiles.write_many(writes), *dead_letters)
        self._rep_histories.update(histories)
        await intake.write()

    def forget_global_writes(self) -> None:
        """On a rebalance: another worker may write these reps and partitions from now on."""
        self._rep_tallies.clear()
        self._rep_histories.clear()

    def _current_history(self, key: bytes) -> tuple[int, History] | None:
        """The rep's history: the table's, merged with what this worker last wrote for the rep (a
        global table replays its own changelog, so it may briefly hold an older history)."""
        stored = self.rep_profiles.get(key)
        current = None if stored is None else decode_profile_history(stored)
        if key not in self._rep_histories:
            return current
        mine = self._rep_histories[key]
        if mine is None or current is None:
            return mine  # deleted here, or not read back yet
        history = current[1]
        for profile in mine[1]:
            history = merge(history, profile)
        return (current[0], history)
