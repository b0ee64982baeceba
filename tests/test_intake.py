"""The Faust behaviours :mod:`streams.kafka.intake` relies on, one test each, and the intake itself on a
real broker: fetched batches in, offsets committed only after a flush, a graceful stop flushes."""

from __future__ import annotations

import asyncio
import gc
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.tables import TableManager
from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP

from streams.config import load_settings
from streams.gc_policy import collections_paused
from streams.ingest.deadletter import InputMessage
from streams.kafka.broker import EmbeddedBroker
from streams.kafka.intake import _INTAKES, BatchIntake, FetchedBatches, attach_intake
from streams.kafka.topics import TopicLayout
from streams.kafka.transport import Consumer as LeadPulseConsumer
from streams.worker import engine as engine_module
from streams.worker.app import DeclaredTables, build_app
from tests.harness import produce

TOPIC = "intake.input"
PARTITIONS = 2
MESSAGES = 400


class GatedSink:
    """Records what it is given; a flush waits for ``gate`` (a changelog that has not answered yet)."""

    def __init__(self) -> None:
        self.batches: list[list[InputMessage]] = []
        self.flushes = 0
        self.gate = asyncio.Event()

    async def take(self, messages: Sequence[InputMessage]) -> None:
        self.batches.append(list(messages))

    async def flush(self) -> None:
        await self.gate.wait()
        self.flushes += 1

    def taken(self) -> int:
        return sum(map(len, self.batches))


def app_for(bootstrap: str, tmp_path: Path) -> faust.App:
    return faust.App(
        "intake-probe",
        broker=f"leadpulse://{bootstrap}",
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        topic_disable_leader=True,
        broker_commit_interval=0.2,
        consumer_auto_offset_reset="earliest",
        datadir=str(tmp_path / "faust"),
    )


async def create_topic(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])
    finally:
        await admin.close()


async def committed(bootstrap: str, expected: int) -> bool:
    """Whether the probe group's committed offsets on the input topic add up to ``expected``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="intake-probe", enable_auto_commit=False)
    await consumer.start()
    try:
        offsets = [await consumer.committed(TopicPartition(TOPIC, p)) for p in range(PARTITIONS)]
    finally:
        await consumer.stop()
    return sum(offset or 0 for offset in offsets) == expected


async def until(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``condition`` (plain or async) until it is truthy; fail naming ``what`` after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.mark.integration
async def test_fetched_batches_reach_the_sink_and_offsets_wait_for_the_flush(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    await create_topic(broker.bootstrap)
    await produce(broker.bootstrap, [(TOPIC, f"k{i}".encode(), f"v{i}".encode()) for i in range(MESSAGES)])
    app = app_for(broker.bootstrap, tmp_path)
    sink = GatedSink()
    attach_intake(app, [TOPIC], sink, flush_every=0.2)  # subscribes the topic: no agent needed
    await app.start()
    try:
        await until(lambda: sink.taken() == MESSAGES, 90, "every message to be taken")
        offsets = sorted((m.partition, m.offset) for batch in sink.batches for m in batch)
        assert offsets == sorted(set(offsets)), "a message was taken twice"
        assert len(sink.batches) < MESSAGES / 20, f"{len(sink.batches)} batches: not fetched batches"
        await asyncio.sleep(1.0)  # five commit intervals: Faust commits whatever is acked by then
        assert await committed(broker.bootstrap, 0), "offsets committed before their flush"
        sink.gate.set()
        await until(lambda: committed(broker.bootstrap, MESSAGES), 30, "the offsets after the flush")
    finally:
        await app.stop()


@pytest.mark.integration
async def test_a_graceful_stop_flushes_and_commits_what_was_taken(broker: EmbeddedBroker, tmp_path: Path) -> None:
    await create_topic(broker.bootstrap)
    await produce(broker.bootstrap, [(TOPIC, b"k", f"v{i}".encode()) for i in range(50)])
    app = app_for(broker.bootstrap, tmp_path)
    sink = GatedSink()
    attach_intake(app, [TOPIC], sink, flush_every=3600)  # no timer flush during the test
    await app.start()
    try:
        await until(lambda: sink.taken() == 50, 90, "every message to be taken")
        assert sink.flushes == 0
        sink.gate.set()
    finally:
        await app.stop()  # Faust's stop calls Consumer.wait_empty before it commits
    assert sink.flushes >= 1
    assert await committed(broker.bootstrap, 50)


def test_faust_consumer_getmany_reads_through_wait_next_records() -> None:
    """The one hook: Faust's getmany (the drain loop's source) takes its records from
    ``_wait_next_records(timeout)``, which returns (records by TP, active partitions)."""
    assert "self._wait_next_records(timeout)" in inspect.getsource(FaustConsumer.getmany)
    assert list(inspect.signature(FaustConsumer._wait_next_records).parameters) == ["self", "timeout"]
    assert LeadPulseConsumer.__mro__.index(FetchedBatches) < LeadPulseConsumer.__mro__.index(FaustConsumer)


def test_faust_waits_for_tracked_messages_before_committing_on_stop_and_rebalance() -> None:
    """``wait_empty`` (which the intake extends with a flush) is what Faust's stop and revocation
    call before they commit and give partitions away."""
    stop_consumer = inspect.getsource(faust.App._stop_consumer)
    assert stop_consumer.index("_consumer_wait_empty") < stop_consumer.index("tables.stop")
    revoked = inspect.getsource(faust.App._on_partitions_revoked)
    assert "_consumer_wait_empty" in revoked
    assert "consumer.wait_empty()" in inspect.getsource(faust.App._consumer_wait_empty)


def test_faust_commits_acked_offsets_and_gaps_up_to_the_first_hole(tmp_path: Path) -> None:
    """Faust commits the offset after the longest run of acked offsets (gaps count as acked), with the
    intake's bulk acks (``ack_taken``) as with its own ``ack``.

    A pitfall pinned here: Faust lets *one* unacked offset right after the committed one through
    (its check is ``min(acked) - committed > 1``). So acks must come in offset order, which the
    intake keeps: a flush acks its offsets in fetch order, and flushes never overlap."""
    app = faust.App("gap-probe", broker="leadpulse://127.0.0.1:9", autodiscover=False, datadir=str(tmp_path))
    consumer = app.consumer
    assert isinstance(consumer, LeadPulseConsumer)
    tp = TP("gappy", 0)
    app.topics._acking_topics.add("gappy")

    async def commit_after(acked: list[int], gap: tuple[int, int] | None = None) -> int | None:
        consumer.ack_taken({tp: acked})
        if gap is not None:
            await consumer._add_gap(tp, *gap)
        offset = consumer._new_offset(tp)
        if offset is not None:
            consumer._committed_offset[tp] = offset
        return offset

    assert asyncio.run(commit_after([0, 1, 5], gap=(2, 4))) == 6  # 2..4 compacted away
    assert asyncio.run(commit_after([8])) is None  # 6 and 7 taken, not yet flushed: 8 waits
    assert asyncio.run(commit_after([6, 7])) == 9
    assert asyncio.run(commit_after([10])) == 11  # the pitfall: 9 was never acked
    assert asyncio.run(commit_after([11, 12])) == 13
    assert asyncio.run(commit_after([12, 13])) == 14  # an offset acked twice counts once


def test_the_bulk_ack_keeps_the_books_faust_ack_keeps() -> None:
    """``FetchedBatches.ack_taken`` does what ``Consumer.ack`` does for one message, on the same
    attributes and under the same lock; a Faust upgrade that changes them fails here."""
    ack = inspect.getsource(FaustConsumer.ack)
    for step in (
        "with ack_lock:",
        "self.app.topics.acks_enabled_for(message.topic)",
        "committed = self._committed_offset[tp]",
        "if committed is None or offset >= committed:",
        "acked_index = self._acked_index[tp]",
        "if offset not in acked_index:",
        "acked_index.add(offset)",
        "acked_for_tp = self._acked[tp]",
        "acked_for_tp.append(offset)",
        "self._n_acked += 1",
        "notify(self._waiting_for_ack)",
    ):
        assert step in ack, step


@pytest.mark.integration
async def test_seek_to_committed_leaves_a_partition_without_commits_where_it_was(broker: EmbeddedBroker) -> None:
    """Why the intake seeks back when a fetch returns records of a paused partition: Faust's
    resume seeks to committed offsets, and aiokafka does not move a partition with none."""
    await create_topic(broker.bootstrap)
    await produce(broker.bootstrap, [(TOPIC, b"k", f"v{i}".encode()) for i in range(10)])
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        group_id="no-commits",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        fetched = 0
        while fetched < 10:
            fetched += sum(map(len, (await consumer.getmany(timeout_ms=500)).values()))
        before = {p: await consumer.position(p) for p in partitions}
        await consumer.seek_to_committed()
        assert {p: await consumer.position(p) for p in partitions} == before
        assert sum(before.values()) == 10
    finally:
        await consumer.stop()


async def test_the_worker_consumer_waits_for_records_as_configured(tmp_path: Path) -> None:
    """Faust passes fetch_max_wait_ms=1500 to aiokafka, fixed; aiokafka's fetcher reads it at start."""
    app = app_for("127.0.0.1:9", tmp_path)
    app.fetch_max_wait_ms = 123  # as streams.worker.app.build_app sets it from LEADPULSE_FETCH_MAX_WAIT_MS
    thread = app.consumer._thread
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == 123
        assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in inspect.getsource(type(consumer).start)
    finally:
        await consumer.stop()


def test_a_failed_flush_of_the_output_timer_exits_without_committing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush that fails has cut deals it did not write: going on would commit past them."""
    settings = load_settings(data_dir=tmp_path, store="memory")
    engine = engine_module.Engine(settings, "127.0.0.1:9", TopicLayout(deal_partitions=2, rep_partitions=1))
    exits: list[str] = []
    monkeypatch.setattr(engine_module, "exit_without_committing", lambda what, messages=(): exits.append(what))

    async def one_alert(*_: object) -> list[asyncio.Future[None]]:
        sent = asyncio.get_running_loop().create_future()
        sent.set_result(None)
        return [sent]

    class FailingFlush:
        """The engine's processor, but its flush fails (a method of the compiled BatchProcessor
        cannot be patched: mypyc's native classes have no instance dict)."""

        def __init__(self, processor: object) -> None:
            self.processor = processor

        def __getattr__(self, name: str) -> object:
            return getattr(self.processor, name)

        async def flush(self) -> None:
            raise ConnectionError("the changelog did not answer")

    monkeypatch.setattr(engine.outputs, "emit_due", one_alert)
    monkeypatch.setattr(engine, "processor", FailingFlush(engine.processor))
    asyncio.run(engine._emit_due())
    assert exits == ["flushing the output timer's alerts with"]


class StoppedFlow:
    """What FetchedBatches sits on: a fetch that returns ``records``, with the flow stopped."""

    def __init__(self, records: dict[TP, list], assigned: set[TP]) -> None:
        self.records, self.assigned = records, assigned
        self.app = type("App", (), {})()
        self.flow_active, self.should_stop = False, False
        self._buffered_partitions: set[TP] = set()
        self.seeks: list[tuple[TP, int]] = []

    async def _wait_next_records(self, timeout: float) -> tuple[dict[TP, list], set[TP]]:
        return self.records, set(self.assigned)

    def assignment(self) -> set[TP]:
        return self.assigned

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


class DivertingStoppedFlow(FetchedBatches, StoppedFlow):
    pass


async def test_records_fetched_while_the_flow_is_stopped_are_fetched_again_not_dropped() -> None:
    """Faust would drop them and seek every partition to its committed offset, a seek that fails as
    a whole when a partition was unassigned meanwhile: the records after them would then look like
    a committable gap. The intake seeks each such partition back to its first record itself."""

    class Record:
        def __init__(self, offset: int) -> None:
            self.offset = offset

    mine, gone, changelog = TP(TOPIC, 0), TP(TOPIC, 1), TP("app-deals-changelog", 0)
    records = {mine: [Record(7), Record(8)], gone: [Record(3)], changelog: [Record(1)]}
    consumer = DivertingStoppedFlow(records, assigned={mine, changelog})
    sink = GatedSink()
    intake = type("Intake", (), {"topics": frozenset({TOPIC}), "take": sink.take})()
    _INTAKES[consumer.app] = intake
    rest, _active = await consumer._wait_next_records(1.0)
    assert consumer.seeks == [(mine, 7)]  # the partition unassigned meanwhile is its next owner's
    assert rest == {changelog: records[changelog]} and sink.taken() == 0


async def test_a_batch_folds_with_the_garbage_collector_paused_and_resumed_after() -> None:
    """Young collections during a batch only scan and promote its objects (streams/kafka/intake.py):
    the collector is paused while a batch folds, overlapping takes included, and resumed after, on
    failure too; a pause somebody else made is theirs to end."""
    seen: list[bool] = []
    release = asyncio.Event()

    class Sink(GatedSink):
        async def take(self, messages: Sequence[InputMessage]) -> None:
            seen.append(gc.isenabled())
            if messages[0].offset == 0:
                await release.wait()  # the first take is still folding when the second runs
            seen.append(gc.isenabled())

    intake = BatchIntake(faust.App("gc-probe", autodiscover=False, web_enabled=False), [TOPIC], Sink(), 60)
    tp = TP(TOPIC, 0)

    def batch(offset: int) -> list[InputMessage]:
        return [InputMessage(TOPIC, 0, offset, b"k", b"v", None)]

    assert gc.isenabled()
    first = asyncio.ensure_future(intake.take(batch(0), {tp: [0]}))
    await asyncio.sleep(0)
    await intake.take(batch(1), {tp: [1]})
    assert not gc.isenabled(), "resumed while the first batch still folds"
    release.set()
    await first
    assert seen == [False, False, False, False] and gc.isenabled()

    with pytest.raises(ValueError), collections_paused():
        raise ValueError("a failed fold")
    assert gc.isenabled()
    gc.disable()
    try:
        with collections_paused():
            pass
        assert not gc.isenabled(), "somebody else's pause ended by the intake"
    finally:
        gc.enable()


def test_the_table_manager_skips_only_the_nap_faust_takes_before_recovery() -> None:
    """streams/worker/app.py:DeclaredTables drops the second Faust's table manager sleeps for tables
    registered late, and must do all the rest of what Faust's ``on_start`` does."""
    lines = [line.strip() for line in inspect.getsource(TableManager.on_start).splitlines()]
    body = [line for line in lines[1:] if line and not line.startswith('"""')]
    assert body == [
        "await self.sleep(1.0)",
        "if not self.should_stop:",
        "await self._update_channels()",
        "await self.recovery.start()",
    ]
    app = build_app(load_settings(), "localhost:9092", 4)
    assert isinstance(app.tables, DeclaredTables)
