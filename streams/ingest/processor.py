"""Batch processing of input messages, free of Faust: decode, dead-letter, fold, write.

A batch's messages are decoded and validated one by one; the valid ones are grouped by deal
and each deal is folded once, whatever number of its events the batch holds. :meth:`take` makes
the results visible at once (tables, aggregates) and starts sending what the batch owes the
output and dead-letter topics; :meth:`flush`, once per commit window, waits for those and then
sends each deal and tally changed since the last flush to its changelog, once (one changelog
message per changed deal per window, not per event or per batch). Offsets of taken messages may
be committed once a flush that started after their ``take`` has returned.

Redelivery is harmless everywhere: a deal record and an intake tally each carry the highest
offset they have absorbed. A rejected message is dead-lettered before its tally is written,
so a crash in between re-sends the dead letter (at-least-once) rather than losing it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol

from schemas.events import DealEvent, InputTopic, RepProfile
from schemas.outputs import DeadLetterRecord
from streams.config import Settings
from streams.fold.contributions import DealView, lead_moved, response_inputs
from streams.fold.deals import DealState, Delivery, fold
from streams.fold.facts import DealTopic, fact_from_event
from streams.fold.outputs import Plan
from streams.fold.profiles import History, merge
from streams.ingest.deadletter import InputMessage, dead_letter
from streams.ingest.decode import Rejection, decode
from streams.state.codec import (
    IntakeTally,
    decode_deal,
    decode_profile_history,
    encode_deal,
    encode_profile,
    encode_profile_history,
    intake_key,
    profile_from_json,
)
from streams.state.keystore import KeyStore, Write
from streams.state.rollups import Rollups

DEAL_TOPIC_OF = {
    InputTopic.DEAL_STAGES: DealTopic.DEAL_STAGES,
    InputTopic.CALLS: DealTopic.CALLS,
    InputTopic.EMAILS: DealTopic.EMAILS,
    InputTopic.MEETINGS: DealTopic.MEETINGS,
}


# A deal change costs 100-150 µs with the whole catalog: a batch lets the event loop run between
# this many deals (a few tens of milliseconds), never for its whole length (seconds at 10,000 events).
YIELD_EVERY_DEALS = 200

PublishDeadLetter = Callable[[DeadLetterRecord, bytes | None], Awaitable[object]]


class OutputPlanner(Protocol):
    """What a batch asks of the output topics (:class:`streams.outputs.emitter.Outputs`)."""

    def plan(
        self, partition: int, state: DealState, now: float, view: DealView | None = None, response_moved: bool = True
    ) -> Plan: ...

    async def send(self, plans: Sequence[Plan]) -> list[Awaitable[object]]:
        """Queue the plans' records in order; their acknowledgements, to await."""


class _Intake:
    """A batch's view of the intake tallies of the topic-partitions it reads."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store
        self.tallies: dict[tuple[str, int], IntakeTally] = {}

    def count(self, message: InputMessage, reason: str | None, event_at: float | None = None) -> bool:
        """Count a message; False when this tally has counted it before (a redelivery)."""
        where = (message.topic, message.partition)
        tally = self.tallies.get(where)
        if tally is None:
            tally = self.tallies[where] = IntakeTally.decode(self.store.get(intake_key(*where)))
        return tally.count(message.offset, reason, event_at)

    def put(self) -> None:
        self.store.put_many(
            [
                (intake_key(topic, partition), tally.encode(), partition)
                for (topic, partition), tally in self.tallies.items()
            ]
        )


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
        # Deal records are read, folded and written under this lock, by batches and by the
        # output emitter alike, so neither overwrites what the other just wrote; flushes too, so
        # a flush's records never mark sent an output that it has not seen acknowledged.
        self.lock = asyncio.Lock()
        self._flushing = asyncio.Lock()
        # Output and dead-letter deliveries since the last flush: acknowledged before it writes.
        self._deliveries: list[Awaitable[object]] = []
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

    async def take(self, messages: Sequence[InputMessage]) -> None:
        """Fold a fetched batch (any topics, partitions and order): visible now, durable at the
        next :meth:`flush`. Profiles first: a batch's deal events see the batch's profiles."""
        reps = [message for message in messages if self.topic_of[message.topic] is InputTopic.REPS]
        if reps:
            await self.process_rep_messages(reps)
        if len(reps) < len(messages):
            async with self.lock:
                if self.before_deal_batch is not None:
                    self.before_deal_batch()
                await self._take_deal_messages(
                    [message for message in messages if self.topic_of[message.topic] is not InputTopic.REPS]
                )

    def defer(self, deliveries: Sequence[Awaitable[object]]) -> None:
        """Deliveries the next flush must see acknowledged before it writes deal records."""
        self._deliveries.extend(deliveries)

    def flushes_held(self) -> asyncio.Lock:
        """Held, no flush starts (so no input offset is acked and committed) until released."""
        return self._flushing

    async def flush(self) -> None:
        """Make everything taken so far durable: outputs and dead letters acknowledged, then each
        changed deal and tally on its changelog.

        Flushes run one at a time (a later one must not finish before an earlier one it depends
        on), and hold the deal lock only to cut what was taken: batches go on being taken while
        the acknowledgements are awaited, and wait for the next flush.

        If it raises, what it cut is neither durable nor marked to be written any more: the caller
        must stop without committing (:func:`streams.kafka.intake.exit_without_committing`)."""
        async with self._flushing:
            async with self.lock:
                deliveries, self._deliveries = self._deliveries, []
                deals, tallies, rep_tallies = self.deals.cut(), self.intake.cut(), self.rep_intake.cut()
            await asyncio.gather(*deliveries)  # outputs first: deal records mark them sent
            await asyncio.gather(
                self.deals.durable(deals), self.intake.durable(tallies), self.rep_intake.durable(rep_tallies)
            )

    async def process_deal_messages(self, messages: Sequence[InputMessage]) -> None:
        """Take and flush a batch from the deal-scoped topics."""
        await self.take(messages)
        await self.flush()

    async def _take_deal_messages(self, messages: Sequence[InputMessage]) -> None:
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
        plans: list[Plan] = []
        for number, (deal_id, (partition, deliveries)) in enumerate(by_deal.items()):
            if number % YIELD_EVERY_DEALS == YIELD_EVERY_DEALS - 1:
                await asyncio.sleep(0)  # a big batch must not hold up the web server, scrapes and heartbeats
            key = deal_id.encode()
            stored = self.deals.get_from(key, partition)
            if stored is None:
                before = DealState(deal_id)
            else:
                partition, before = decode_deal(stored)  # a deal stays in the partition that holds it
            result = fold(before, deliveries)
            if not result.changed:
                continue
            state = result.state
            views = (DealView(before), DealView(state))  # derived once, shared by the plan and the aggregates
            # Otherwise the deal's schedule with the timer stands.
            if self.outputs is not None and lead_moved(*views, result.stages_changed):
                moved = response_inputs(views[0]) != response_inputs(views[1])
                owed = self.outputs.plan(partition, state, now, views[1], moved)
                if owed.owed:
                    plans.append(owed)
                    state = owed.state
            record = encode_deal(partition, state)
            writes.append((key, record, partition))
            self.rollups.apply(partition, before, result, (len(stored or b""), len(record)), views)
        self.rollups.settle()
        if self.outputs is not None and plans:
            self.defer(await self.outputs.send(plans))
        self.defer(dead_letters)
        self.deals.put_many(writes)
        intake.put()

    async def process_rep_messages(self, messages: Sequence[InputMessage]) -> None:
        """Process a batch from ``crm.reps`` into each rep's profile history
        (:func:`streams.fold.profiles.merge`: any arrival order gives the same history)."""
        now = self.clock()
        intake = _Intake(self.rep_intake)
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
                stored = self.rep_profiles.get(key)
                histories[key] = None if stored is None else decode_profile_history(stored)
            current = histories[key]
            history = () if current is None else current[1]
            histories[key] = (message.partition, merge(history, profile_from_json(encode_profile(profile))))
        writes: list[Write] = []
        for key, entry in histories.items():
            stored = self.rep_profiles.get(key)
            record = None if entry is None else encode_profile_history(*entry)
            if record != stored:
                writes.append((key, record, 0 if entry is None else entry[0]))
        # The tallies become durable at the next flush, once the dead letters are acknowledged: a bad
        # profile waiting for the dead-letter topic holds back commits, not the intake.
        self.defer(dead_letters)
        await self.rep_profiles.write_many(writes)
        intake.put()

    def absorbed_offsets(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The highest offset counted of each input (topic, partition), for those that counted any,
        keyed by plain ``(topic, partition)`` tuples: the broker's log of that partition must end past it.
        (Compiled with mypyc, a ``tuple[str, int]`` is unboxed and boxed again, so a Faust ``TP``
        given in would come back a plain tuple anyway: callers rebuild their own keys.)"""
        absorbed = {}
        for topic, partition in partitions:
            store = self.rep_intake if self.topic_of[topic] is InputTopic.REPS else self.intake
            offset = IntakeTally.decode(store.get(intake_key(topic, partition))).offset
            if offset >= 0:
                absorbed[(topic, partition)] = offset
        return absorbed

    def deal_watermarks(self, records: Iterable[bytes]) -> dict[tuple[str, int], int]:
        """The highest offset the deal ``records`` have absorbed, per input (topic, partition)."""
        names = {DEAL_TOPIC_OF[kind]: name for name, kind in self.topic_of.items() if kind in DEAL_TOPIC_OF}
        highest: dict[tuple[str, int], int] = {}
        for record in records:
            for topic, partition, offset in decode_deal(record)[1].offsets:
                where = (names.get(topic, topic), partition)  # type: ignore[call-overload]
                highest[where] = max(offset, highest.get(where, -1))
        return highest
