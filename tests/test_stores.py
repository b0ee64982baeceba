"""The persistent store stages writes in memory and persists them, with their changelog offset,
only once acknowledged (streams/state/stores.py): a restart never finds a value the changelog lacks."""

from __future__ import annotations

import asyncio
import sys
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import faust
import pytest
from faust.types import TP

from streams.fold.deals import DealState
from streams.fold.facts import StageFact
from streams.state.codec import decode_deal, encode_deal
from streams.state.stores import RocksStore
from streams.state.tables import declare_tables


def store_in(directory: Path) -> tuple[RocksStore, str]:
    app = faust.App("stores-test", datadir=str(directory), autodiscover=False)
    table = declare_tables(app, deal_partitions=2).deals
    store = table._new_store_by_url("leadpulse-rocksdb://")  # as Faust makes a table's store
    assert isinstance(store, RocksStore)
    return store, table.changelog_topic.get_topic_name()


def crash(store: RocksStore) -> None:
    """The process ends: RocksDB's files stay as they are (closing only releases the lock)."""
    for db in store._dbs.values():
        db.close()
    store._dbs.clear()


def test_staged_writes_are_visible_but_reach_the_disk_only_when_acknowledged(tmp_path: Path) -> None:
    store, topic = store_in(tmp_path)
    store.stage([(b"a", b"a1"), (b"b", b"b1")])
    assert (store.get(b"a"), store.get(b"b"), b"a" in store) == (b"a1", b"b1", True)
    assert sorted(store.items()) == [(b"a", b"a1"), (b"b", b"b1")]
    store.persist([(b"a", b"a1", 1, 41)])  # a acknowledged at offset 41 of partition 1; b not yet
    store.stage([(b"a", b"a2")])  # a newer write of a, staged while the older one was in flight
    store.persist([(b"a", b"a1", 1, 41)])
    assert store.get(b"a") == b"a2", "a later staged write stays visible until it is acknowledged"
    assert store.persisted_offset(TP(topic, 1)) == 41

    # A crash now: a restarted store finds only what was acknowledged, and its offset.
    crash(store)
    store, topic = store_in(tmp_path)
    store._db_for_partition(0), store._db_for_partition(1)  # the partitions a recovery opens
    assert (store.get(b"a"), store.get(b"b")) == (b"a1", None)
    assert store.persisted_offset(TP(topic, 1)) == 41 and store.persisted_offset(TP(topic, 0)) is None


def test_a_read_from_a_partition_finds_keys_kept_anywhere(tmp_path: Path) -> None:
    """``get_from`` reads the given partition's database first, then the others: a deal stays in the
    partition that first held it, whatever partition its later events arrive in."""
    store, _topic = store_in(tmp_path)
    store.stage([(b"a", b"a1"), (b"b", b"b1")])
    store.persist([(b"a", b"a1", 0, 3), (b"b", b"b1", 1, 4)])
    crash(store)
    store, _topic = store_in(tmp_path)
    store._db_for_partition(0), store._db_for_partition(1)
    store._key_index.clear()  # as after a restart: Faust's key index knows no key
    assert [store.get_from(key, 0) for key in (b"a", b"b", b"c")] == [b"a1", b"b1", None]
    assert [store.get_from(key, 1) for key in (b"a", b"b", b"c")] == [b"a1", b"b1", None]
    store.stage([(b"a", b"a2"), (b"b", None)])
    assert (store.get_from(b"a", 0), store.get_from(b"b", 1)) == (b"a2", None), "staged writes win"


def test_values_are_those_of_the_items_staged_writes_winning_offsets_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``_itervalues`` (what a rebuild reads) walks the databases itself: the same values as ``items()``."""
    store, _topic = store_in(tmp_path)
    store.stage([(b"a", b"a1"), (b"b", b"b1"), (b"c", b"c1")])
    store.persist([(b"a", b"a1", 0, 3), (b"b", b"b1", 1, 4), (b"c", b"c1", 1, 5)])  # each with its offset
    store.stage([(b"a", b"a2"), (b"b", None), (b"d", b"d1")])
    monkeypatch.setattr(store, "_dbs_for_actives", lambda: iter(list(store._dbs.values())))  # both active
    assert sorted(value for _key, value in store.items()) == [b"a2", b"c1", b"d1"]
    assert sorted(store._itervalues()) == [b"a2", b"c1", b"d1"]
    assert sorted(store.values()) == [b"a2", b"c1", b"d1"]


def test_deletes_and_offsets_are_written_per_partition(tmp_path: Path) -> None:
    store, topic = store_in(tmp_path)
    store.stage([(b"a", b"a1"), (b"c", b"c1")])
    store.persist([(b"a", b"a1", 0, 5), (b"c", b"c1", 1, 9)])
    store.stage([(b"a", None)])
    assert store.get(b"a") is None and b"a" not in store
    store.persist([(b"a", None, 0, 6)])
    crash(store)
    store, topic = store_in(tmp_path)
    store._db_for_partition(0), store._db_for_partition(1)
    assert (store.get(b"a"), store.get(b"c")) == (None, b"c1")
    assert (store.persisted_offset(TP(topic, 0)), store.persisted_offset(TP(topic, 1))) == (6, 9)


def test_a_global_table_leaves_offsets_to_the_changelog_and_the_changelog_order_wins(tmp_path: Path) -> None:
    """Other workers write a global table's changelog too: persisting this worker's own offset
    would skip their records at the next recovery, so only the recovery loop records offsets."""
    app = faust.App("stores-test", datadir=str(tmp_path), autodiscover=False)
    table = declare_tables(app, deal_partitions=2).rep_profiles
    store = table._new_store_by_url("leadpulse-rocksdb://")
    topic = table.changelog_topic.get_topic_name()
    store.stage([(b"ann", b"mine")])
    store.persist([(b"ann", b"mine", 0, 11)])
    assert store.get(b"ann") == b"mine" and store.persisted_offset(TP(topic, 0)) is None
    store.stage([(b"ann", b"mine again")])  # in flight when another worker's newer write arrives
    newer = SimpleNamespace(
        message=SimpleNamespace(tp=TP(topic, 0), partition=0, offset=12, key=b"ann", value=b"theirs")
    )
    store.apply_changelog_batch([newer], to_key=None, to_value=None)
    assert store.get(b"ann") == b"theirs" and store.persisted_offset(TP(topic, 0)) == 12


def test_a_failed_batch_is_no_longer_visible(tmp_path: Path) -> None:
    store, _topic = store_in(tmp_path)
    store.stage([(b"a", b"a1")])
    store.unstage([b"a"])
    assert store.get(b"a") is None and list(store.items()) == []


class ChangelogLog:
    """A producer that appends to one in-memory changelog partition and acknowledges at once."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes | None]] = []

    async def send(self, topic: str, key: bytes, value: bytes | None, partition: int | None, *_: object) -> object:
        self.records.append((key, value))
        acknowledged = asyncio.get_running_loop().create_future()
        acknowledged.set_result(SimpleNamespace(partition=0, offset=len(self.records) - 1))
        return acknowledged

    def read_back(self, topic: str, start: int) -> list[SimpleNamespace]:
        """The records from ``start`` on, as the standby reader hands them to the table."""
        return [
            SimpleNamespace(
                key=key,
                value=value,
                message=SimpleNamespace(tp=TP(topic, 0), partition=0, offset=offset, key=key, value=value),
            )
            for offset, (key, value) in enumerate(self.records[start:], start)
        ]


async def test_a_global_table_never_lets_the_read_back_of_its_own_older_writes_undo_a_newer_one(tmp_path: Path) -> None:
    """Every worker applies a global table's whole changelog, its own writes included. A tally
    deleted and then counted again (a start over) must not be deleted again when the deletion comes
    back, nor may the next flush send the deletion again: the tally would be gone for good. (The
    processor used to patch over older read-backs with its own memory of what it wrote; the table
    now never holds them, for tallies and profile histories alike.)"""
    app = faust.App("tables-test", datadir=str(tmp_path), autodiscover=False)
    table = declare_tables(app, deal_partitions=2).rep_intake
    changelog = app.producer = ChangelogLog()
    topic = table.changelog_topic.get_topic_name()
    await table.write_many([(b"crm.reps:0", b"old tally", 0)])
    await table.write_many([(b"crm.reps:0", None, 0)])  # the start over deletes it
    table.put_many([(b"crm.reps:0", b"new tally", 0)])  # counted again, not flushed yet
    table.apply_changelog_batch(changelog.read_back(topic, 0))  # the old tally and its deletion come back
    assert table.data.get(b"crm.reps:0") == b"new tally"
    await table.flush()
    assert changelog.records[-1] == (b"crm.reps:0", b"new tally")
    table.apply_changelog_batch(changelog.read_back(topic, 2))  # its own latest write: the changelog leads again
    assert table.data.get(b"crm.reps:0") == b"new tally"
    await changelog.send(topic, b"crm.reps:0", b"the next owner's tally", None)  # after a rebalance
    table.apply_changelog_batch(changelog.read_back(topic, 3))
    assert table.data.get(b"crm.reps:0") == b"the next owner's tally"


def test_a_deal_record_holds_its_own_size_not_orjson_s_buffer() -> None:
    """orjson returns its bytes in a buffer of 4 KiB at least; a kept record is trimmed (codec.exact)."""
    stage = StageFact(1.7e9, "e1", "new", "ann", None, None, "USD", "inbound", None, None)
    state = DealState("deal-1", stages=(stage,))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        records = [encode_deal(0, state) for _ in range(100)]
        held = (tracemalloc.get_traced_memory()[0] - before) / len(records)
    finally:
        tracemalloc.stop()
    assert decode_deal(records[0]) == (0, state)
    assert held < 2 * sys.getsizeof(records[0]) < 1024
