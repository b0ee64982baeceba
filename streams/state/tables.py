"""All tables, each with ``help=``, explicit partitions and a versioned name.

Bump a table's ``_vN`` when its record layout or the fold's semantics change: a new name
starts fresh state, rebuilt from the input topics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import faust
from faust.stores.base import SerializedStore
from faust.types import EventT

from streams.kafka.batches import send_in_batches
from streams.state.codec import deal_partition
from streams.state.keystore import Write, apply_writes
from streams.state.stores import RocksStore

DEALS = "deals_by_id_v2"
INTAKE = "intake_by_partition_v2"
REP_PROFILES = "rep_profiles_v2"
REP_INTAKE = "rep_intake_by_partition_v2"


class _PartitionedWrites:
    """Writes placed in a named partition: visible at once, sent to the changelog together later.

    Faust finds a write's partition from the *current event*, which is unset outside a Stream
    ("Cannot modify table key from outside of stream iteration", faust-streaming #497). The
    processor knows each event's source partition, so it says it explicitly.

    ``put_many`` makes writes visible and marks their keys dirty; ``flush`` sends each dirty key's
    *current* value once, however many times it was written since the last flush (a deal folded in
    ten batches of one commit window costs one changelog record), in record batches straight to the
    aiokafka producer (:func:`send_in_batches`), and returns once every record is acknowledged: then the input
    offsets behind them may be committed. Sending current values keeps the changelog in the table's
    order as long as flushes do not overlap (the processor's lock). Tables with ``use_partitioner``
    (global tables) let the producer pick the partition from the key.

    Bypassing ``send_changelog`` skips its ``_on_changelog_sent`` callback, which records the
    RocksDB store's persisted offsets: here the persistent store writes values and offset together,
    after the acknowledgement (:mod:`streams.state.stores`).
    """

    use_partitioner: bool
    data: Any
    app: faust.App
    changelog_topic: faust.TopicT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._dirty: dict[bytes, int] = {}  # key -> partition, written since the last flush

    def get(self, key: bytes, default: Any = None) -> Any:
        """The stored bytes of ``key``, or ``default``: straight from the store.

        Keys and values are raw bytes, so the store's own ``_get`` is the answer. Faust's path
        (``Mapping.get`` -> the table's ``__getitem__`` and its sensor -> ``key in store`` and then
        ``store[key]``, each through the serializers -> a ``KeyError`` for a missing key) read RocksDB
        twice and cost 11% of a catch-up's CPU."""
        data = self.data
        value = data._get(key) if isinstance(data, SerializedStore) else data.data.get(key)
        return default if value is None else value

    def get_from(self, key: bytes, partition: int) -> bytes | None:
        """The stored bytes of ``key``, looked for in ``partition`` first: one RocksDB read where Faust's
        store probes the partitions a small key index does not know (most, on a table of many deals)."""
        data = self.data
        return data.get_from(key, partition) if isinstance(data, RocksStore) else self.get(key)

    def stored_values(self) -> Iterator[bytes]:
        """Every value the store holds (of the partitions Faust's RocksDB store serves: the active
        ones), as stored: without Faust's per-value decoding through its serializer registry, 13% of
        a rebuild."""
        data = self.data
        return data._itervalues() if isinstance(data, SerializedStore) else iter(list(data.data.values()))

    def put_many(self, writes: list[Write]) -> None:
        if isinstance(self.data, RocksStore):  # visible at once, on disk once acknowledged (streams/state/stores.py)
            self.data.stage((key, value) for key, value, _partition in writes)
        else:
            apply_writes(self.data, writes)
        for key, _value, partition in writes:
            self._dirty[key] = partition

    def cut(self) -> list[Write]:
        """The keys written since the last cut, each with its value now (what :meth:`durable` sends)."""
        dirty, self._dirty = self._dirty, {}
        return [(key, self.get(key), partition) for key, partition in dirty.items()]

    async def durable(self, writes: list[Write]) -> None:
        """Send a cut to the changelog and return once acknowledged (with RocksDB: then on disk).
        Writes made after the cut stay visible and wait for the next one."""
        if not writes:
            return
        producer = self.app.producer
        topic = self.changelog_topic.get_topic_name()
        persistent = isinstance(self.data, RocksStore)
        try:
            if self.use_partitioner:  # the producer picks each key's partition
                deliveries = [await producer.send(topic, key, value, None, None, None) for key, value, _ in writes]
                landed = [(metadata.partition, metadata.offset) for metadata in await asyncio.gather(*deliveries)]
            else:
                landed = await send_in_batches(producer._ensure_producer(), topic, writes)
        except BaseException:
            if persistent:
                self.data.unstage(key for key, _value, _partition in writes)
            raise
        if persistent:
            self.data.persist(
                (key, value, partition, offset)
                for (key, value, _partition), (partition, offset) in zip(writes, landed, strict=True)
            )
        self._landed(writes, [offset for _partition, offset in landed])

    def _landed(self, writes: list[Write], offsets: list[int]) -> None:
        """The writes are on the changelog at ``offsets``."""

    async def flush(self) -> None:
        await self.durable(self.cut())

    async def write_many(self, writes: list[Write]) -> None:
        self.put_many(writes)
        await self.flush()


class BatchTable(_PartitionedWrites, faust.Table):
    pass


_UNSENT = -1  # a key written here and not sent yet: every changelog record of it is older


class BatchGlobalTable(_PartitionedWrites, faust.GlobalTable):
    """A global table: every worker applies the whole changelog as it arrives, its own writes too.

    Each key has one writer at a time (the worker owning the ``crm.reps`` partition behind it), so a
    changelog record of a key this worker has written, below the offset its latest write landed
    at, is older than what the table holds: applied, it would undo the newer write, and the next
    cut would send the older value back to the changelog for good (a start over lost every rep
    tally that way: its deletions came back after the new counts). Such records are skipped until
    this worker's latest write of the key is read back."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._written_at: dict[bytes, int] = {}  # key -> changelog offset of this worker's latest write

    def put_many(self, writes: list[Write]) -> None:
        super().put_many(writes)
        for key, _value, _partition in writes:
            self._written_at[key] = _UNSENT

    def _landed(self, writes: list[Write], offsets: list[int]) -> None:
        for (key, _value, _partition), offset in zip(writes, offsets, strict=True):
            if key not in self._dirty and self._written_at.get(key) == _UNSENT:  # not written again since the cut
                self._written_at[key] = offset

    def apply_changelog_batch(self, batch: Iterable[EventT]) -> None:
        newer = []
        for event in batch:
            message = event.message
            written_at = self._written_at.get(message.key)
            if written_at is not None:
                if written_at == _UNSENT or message.offset < written_at:
                    continue  # older than this worker's latest write
                del self._written_at[message.key]  # that write, read back: the changelog leads again
            newer.append(event)
        super().apply_changelog_batch(newer)


# What app.GlobalTable passes, and more: every worker applies the whole changelog as it arrives.
# use_partitioner: the producer picks the changelog partition from the key, so crm.reps may
# have any partition count. recovery_buffer_size=1: a global changelog partition is both
# "active" and "standby" on every worker, Faust's recovery loop treats it as active, and with
# the default buffer (1000) another worker's updates are not applied until 1000 have arrived
# (faust-streaming #283; the GlobalTable docstring asks for this setting).
_GLOBAL: dict[str, Any] = {
    "partitions": 1,
    "use_partitioner": True,
    "is_global": True,
    "standby_buffer_size": 1,
    "recovery_buffer_size": 1,
}


@dataclass(frozen=True)
class Tables:
    deals: BatchTable
    intake: BatchTable
    rep_profiles: BatchGlobalTable
    rep_intake: BatchGlobalTable

    async def discard_everything(self) -> int:
        """Delete every record the tables hold, through their changelogs (acknowledged on return):
        a recovery that reads those changelogs again ends with nothing of them. How many."""
        discarded = 0
        for table in (self.deals, self.intake, self.rep_profiles, self.rep_intake):
            writes = [(key, None, _partition_of(table, key, value)) for key, value in list(table.data.items())]
            await table.write_many(writes)
            discarded += len(writes)
        return discarded

    @staticmethod
    def deal_table_names() -> list[str]:
        return [DEALS, INTAKE]

    @staticmethod
    def global_table_names() -> list[str]:
        return [REP_PROFILES, REP_INTAKE]


def _partition_of(table: BatchTable | BatchGlobalTable, key: bytes, value: bytes) -> int:
    """The changelog partition of a record (a global table's producer picks it from the key)."""
    if table.use_partitioner:
        return 0
    if table.name == DEALS:
        return deal_partition(value)
    return int(key.rsplit(b":", 1)[1])  # an intake tally: streams.state.codec.intake_key


def declare_tables(app: faust.App, deal_partitions: int) -> Tables:
    """Create and register the tables (as ``app.Table`` does, with the batch-write classes)."""

    def register(cls: type[faust.Table], name: str, help: str, **options: Any) -> Any:
        table = cls(
            app,
            name=name,
            beacon=app.tables.beacon,
            help=help,
            key_type=bytes,  # bytes types make Faust use the "raw" serializer
            value_type=bytes,
            **options,
        )
        return app.tables.add(table)

    return Tables(
        deals=register(
            BatchTable,
            DEALS,
            "Each deal's facts (stage events, activities), offset watermarks and duplicate counts.",
            partitions=deal_partitions,
        ),
        intake=register(
            BatchTable,
            INTAKE,
            "Per deal-topic partition: messages consumed and rejected by reason.",
            partitions=deal_partitions,
        ),
        rep_profiles=register(
            BatchGlobalTable,
            REP_PROFILES,
            "Each rep's recent profiles (crm.reps), newest last, on every worker.",
            **_GLOBAL,
        ),
        rep_intake=register(
            BatchGlobalTable,
            REP_INTAKE,
            "Per crm.reps partition: messages consumed and rejected by reason.",
            **_GLOBAL,
        ),
    )
