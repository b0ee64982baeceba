"""The persistent table store: Faust's RocksDB store (the ``rocksdict`` driver), whose disk never
runs ahead of the changelog.

Faust writes a table's value to RocksDB at once and records the changelog offset later, when the
changelog message is acknowledged. A crash in between leaves RocksDB holding a value the changelog
never got. The input's offsets were not committed either, so the events are redelivered. But the
deal record on disk already carries their offsets, so the redelivery is skipped as a duplicate.
Those events then live only on this disk: a worker that recovers the partition from the changelog
never sees them. (The memory store has no such problem: it starts empty.)

So a batch's writes are *staged*: visible to reads at once (the batch and the timer read their own
writes), in memory only. They are *persisted* once the changelog has acknowledged them: one atomic
``WriteBatch`` per partition, holding the values and the partition's changelog offset. Crash before
the acknowledgement: the disk holds the last acknowledged state, recovery reads on from its offset,
and the redelivered events are folded again. Crash after it: the same, with less to read.

A global table's changelog partition also carries the other workers' writes, which reach this
worker through Faust's recovery loop (``apply_changelog_batch``), later than its own acknowledgement:
recording its own offset would skip theirs at the next recovery. So a global table persists values
only, and the recovery loop alone records offsets (its own writes come back through it too). A value
the loop applies replaces what is staged for the key: the changelog's order wins.

Registered as the ``leadpulse-rocksdb`` store (``LEADPULSE_STORE=rocksdb``) through the
``faust.stores`` entry point.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from faust.stores.rocksdb import Store as FaustRocksStore

Persisted = tuple[bytes, bytes | None, int, int]  # key, value (None deletes), partition, changelog offset


class RocksStore(FaustRocksStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._staged: dict[bytes, bytes | None] = {}  # written, not yet acknowledged

    def stage(self, writes: Iterable[tuple[bytes, bytes | None]]) -> None:
        for key, value in writes:
            self._staged[key] = value

    def unstage(self, keys: Iterable[bytes]) -> None:
        """Writes that will not be acknowledged (the batch failed): no longer visible."""
        for key in keys:
            self._staged.pop(key, None)

    def persist(self, acknowledged: Iterable[Persisted]) -> None:
        """Acknowledged writes, with the changelog offsets they got, to disk: atomically per partition."""
        batches: dict[int, Any] = {}
        offsets: dict[int, int] = {}
        for key, value, partition, offset in acknowledged:
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = self._write_batch()
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
            self._key_index[key] = partition
            offsets[partition] = max(offset, offsets.get(partition, -1))
            if self._staged.get(key, value) == value:  # a later staged write of the key stays staged
                self._staged.pop(key, None)
        shared = self.table.is_global or self.table.use_partitioner  # the other workers write here too
        for partition, batch in batches.items():
            if not shared:
                batch.put(self.offset_key, str(offsets[partition]).encode())
            self._db_for_partition(partition).write(batch)

    def apply_changelog_batch(self, batch: Iterable[Any], to_key: Any, to_value: Any) -> None:
        events = list(batch)
        for event in events:
            self._staged.pop(event.message.key, None)
        super().apply_changelog_batch(events, to_key, to_value)

    def _write_batch(self) -> Any:
        from rocksdict import WriteBatch

        return WriteBatch(raw_mode=True)

    def get_from(self, key: bytes, partition: int) -> bytes | None:
        """The value of ``key``, read in ``partition``'s database first; then where Faust's lookup
        finds it (its key index, else every partition's database), for a key kept elsewhere or nowhere."""
        staged = self._staged
        if key in staged:
            return staged[key]
        db = self._dbs.get(partition)
        if db is not None:
            value = db.get(key)
            if value is not None:
                return value
        return super()._get(key)

    def _get(self, key: bytes) -> bytes | None:
        if key in self._staged:
            return self._staged[key]
        return super()._get(key)

    def _contains(self, key: bytes) -> bool:
        if key in self._staged:
            return self._staged[key] is not None
        return bool(super()._contains(key))

    def _iteritems(self) -> Iterator[tuple[bytes, bytes]]:
        """Faust's walk (the active partitions' databases, their offset keys left out), inlined: a
        rebuild reads every value through here, and Faust's nested generators cost a few µs each."""
        staged, offset_key = self._staged, self.offset_key
        for db in self._dbs_for_actives():
            for key, value in db.items():
                if key != offset_key and key not in staged:
                    yield key, value
        yield from [(key, value) for key, value in list(staged.items()) if value is not None]

    def _iterkeys(self) -> Iterator[bytes]:
        for key, _ in self._iteritems():
            yield key

    def _itervalues(self) -> Iterator[bytes]:
        for _, value in self._iteritems():
            yield value
