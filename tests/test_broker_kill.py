"""Event-sourced means restartable: ``kill -9`` mid-stream changes no final value, with either store.

With the persistent store the killed worker's disk is also checked against the changelog: it must
hold exactly the changelog's records up to the offset it says it persisted (streams/stores.py),
never a value the changelog lacks; the restart then recovers from that offset."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from rocksdict import AccessType, Options, Rdict

from streams.broker import EmbeddedBroker
from streams.config import load_settings
from streams.stores import RocksStore
from streams.tables import DEALS
from streams.topics import changelog_name, committed_total, topic_names
from tests.harness import (
    CATALOG_SAMPLES,
    SPEC_SAMPLES,
    WorkerProcess,
    produce,
    read_topic,
    records_in,
    select,
    settled_pair,
    simulated_messages,
    total,
    wait_until,
)

pytestmark = pytest.mark.integration

INPUT_TOPICS = tuple(topic_names(load_settings()).values())
COMPARED = [*SPEC_SAMPLES, *CATALOG_SAMPLES, "leadpulse_events_rejected_total", "leadpulse_events_processed_total"]


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
def test_kill_9_while_input_flows_ends_with_the_values_of_an_uninterrupted_run(
    broker: EmbeddedBroker, tmp_path: Path, store: str
) -> None:
    messages = simulated_messages(40 * 60)
    assert len(messages) > 10_000
    steady = WorkerProcess(broker.bootstrap, "steady", tmp_path / "steady", extra_env={"LEADPULSE_STORE": "memory"})
    crashy = WorkerProcess(
        broker.bootstrap,
        "crashy",
        tmp_path / "crashy",
        # Small fetched batches and short commit windows: the kill lands after some flushes.
        extra_env={
            "LEADPULSE_BATCH_MAX_EVENTS": "200",
            "LEADPULSE_COMMIT_INTERVAL_SECONDS": "0.5",
            "LEADPULSE_STORE": store,
        },
    )
    steady.start()
    crashy.start()
    try:
        half = len(messages) // 2
        asyncio.run(produce(broker.bootstrap, messages[:half]))
        # Keep producing the second half while the worker is killed.
        producer = threading.Thread(target=lambda: asyncio.run(produce(broker.bootstrap, messages[half:])))
        producer.start()
        deals_changelog = changelog_name("crashy", DEALS)
        wait_until(
            lambda: (
                total(crashy.scrape(), "leadpulse_events_processed_total") > half * 0.6
                and asyncio.run(records_in(broker.bootstrap, deals_changelog)) > 200
                # input committed: a flush completed, so its deal records are on disk (RocksDB)
                and asyncio.run(committed_total(broker.bootstrap, "crashy", INPUT_TOPICS)) > 2000
            ),
            60,
            "the crashy worker to be partway through, with deals flushed to its changelog and disk",
        )
        crashy.kill()
        if store == "rocksdb":
            assert_disk_matches_the_changelog(broker.bootstrap, crashy.data_dir / "v1" / "tables", "crashy")
        producer.join(120)
        crashy.start()
        for worker in (steady, crashy):
            wait_until(
                lambda w=worker: total(w.scrape(), "leadpulse_events_processed_total") == len(messages),
                120,
                f"{worker.app_id} to process all {len(messages)} messages",
            )
        # Live gauges move with the clock: compare scrapes that reflect the same moment.
        expected, actual = settled_pair(steady, crashy, COMPARED)
    finally:
        steady.stop()
        crashy.stop()
    for name in COMPARED:
        assert select(actual, name) == pytest.approx(select(expected, name)), name
    assert total(actual, "leadpulse_calls_total") > 1000
    assert total(actual, "leadpulse_events_duplicate_total") > 0
    assert total(actual, "leadpulse_events_rejected_total") > 0


def assert_disk_matches_the_changelog(bootstrap: str, tables: Path, app_id: str) -> None:
    """Each deal partition's RocksDB holds exactly the changelog's latest values up to the
    offset it persisted: nothing the changelog lacks, nothing it has before that offset missing."""
    changelog = asyncio.run(read_topic(bootstrap, changelog_name(app_id, DEALS)))
    checked = 0
    for path in sorted(tables.glob(f"{DEALS}-*.db")):
        partition = int(path.stem.rsplit("-", 1)[1])
        db = Rdict(str(path), options=Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            on_disk = dict(db.items())
        finally:
            db.close()
        persisted = int(on_disk.pop(RocksStore.offset_key, b"-1"))  # -1: opened, nothing persisted yet
        expected: dict[bytes, bytes] = {}
        for record in changelog:
            if record.partition == partition and record.offset <= persisted:
                if record.value is None:
                    expected.pop(record.key, None)
                else:
                    expected[record.key] = record.value
        assert on_disk == expected, f"partition {partition}: the disk and the changelog disagree"
        checked += len(on_disk)
    assert checked > 100, "the killed worker had persisted almost nothing"
