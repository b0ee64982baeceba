"""Event-sourced means restartable: ``kill -9`` mid-stream changes no final value, with either store.

With the persistent store the killed worker's disk is also checked against the changelog: it must
hold exactly the changelog's records up to the offset it says it persisted (streams/state/stores.py),
never a value the changelog lacks; the restart then recovers from that offset."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from rocksdict import AccessType, Options, Rdict

from schemas.events import DealEvent
from streams.config import load_settings, topic_names
from streams.ingest.decode import decode
from streams.ingest.processor import DEAL_TOPIC_OF
from streams.kafka.broker import EmbeddedBroker
from streams.kafka.topics import changelog_name, committed_offsets, committed_total
from streams.state.codec import decode_deal
from streams.state.stores import RocksStore
from streams.state.tables import DEALS, REP_PROFILES
from tests.harness import (
    EVERY_FIGURE,
    WorkerProcess,
    assert_same_figures,
    produce,
    read_topic,
    records_in,
    settled_pair,
    simulated_messages,
    total,
    wait_until,
)

pytestmark = pytest.mark.integration

INPUT_TOPICS = tuple(topic_names(load_settings()).values())


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
        committed_at_kill = asyncio.run(committed_offsets(broker.bootstrap, "crashy", INPUT_TOPICS))
        assert_committed_input_is_on_the_changelog(broker.bootstrap, "crashy", committed_at_kill)
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
        # The deal states first (a failure says whether state or only aggregates diverged).
        assert_same_deals(
            broker.bootstrap, "steady", "crashy", f"input committed at the kill: {sorted(committed_at_kill.items())}"
        )
        assert latest_records(broker.bootstrap, "crashy", REP_PROFILES) == latest_records(
            broker.bootstrap, "steady", REP_PROFILES
        ), "the rep profiles differ"
        # Live gauges move with the clock: compare scrapes that reflect the same moment.
        expected, actual = settled_pair(steady, crashy, EVERY_FIGURE)
    finally:
        steady.stop()
        crashy.stop()
    assert_same_figures(expected, actual)
    assert total(actual, "leadpulse_calls_total") > 1000
    assert total(actual, "leadpulse_events_duplicate_total") > 0
    assert total(actual, "leadpulse_events_rejected_total") > 0


def latest_records(bootstrap: str, app_id: str, table: str) -> dict[bytes, bytes]:
    """A table's latest record per key, from its changelog."""
    return {record.key: record.value for record in asyncio.run(read_topic(bootstrap, changelog_name(app_id, table)))}


def deal_facts(bootstrap: str, app_id: str) -> dict[bytes, tuple]:
    """Each deal's facts, duplicates and watermarks as its latest changelog record holds them."""
    facts = {}
    for key, value in latest_records(bootstrap, app_id, DEALS).items():
        partition, state = decode_deal(value)
        facts[key] = (partition, state.stages, state.activities, state.duplicates, state.offsets)
    return facts


def assert_same_deals(bootstrap: str, expected_app: str, actual_app: str, context: str) -> None:
    """Both apps' changelogs end with the same deals (they flush every half second: wait for it)."""
    found: dict[str, dict[bytes, tuple]] = {}

    def same() -> bool:
        found["expected"], found["actual"] = deal_facts(bootstrap, expected_app), deal_facts(bootstrap, actual_app)
        return found["expected"] == found["actual"]

    try:
        wait_until(same, 30, "the deal changelogs to agree")
    except AssertionError:
        expected, actual = found["expected"], found["actual"]
        differing = sorted(key for key in expected.keys() & actual.keys() if expected[key] != actual[key])
        details = [
            f"{key!r}: {len(expected[key][1])}+{len(expected[key][2])} facts, watermarks {expected[key][4]}"
            f" vs {len(actual[key][1])}+{len(actual[key][2])}, {actual[key][4]}"
            for key in differing[:10]
        ]
        raise AssertionError(
            f"{actual_app} lacks {len(expected.keys() - actual.keys())} of {len(expected)} deals, has"
            f" {len(actual.keys() - expected.keys())} extra, and {len(differing)} differ: {details}; {context}"
        ) from None


def assert_committed_input_is_on_the_changelog(
    bootstrap: str, app_id: str, committed: dict[tuple[str, int], int]
) -> None:
    """What the group committed is durable: each valid deal event below its partition's committed
    offset is absorbed by its deal's latest changelog record (the deal's watermark reaches it)."""
    settings = load_settings()
    deals = {key: decode_deal(value)[1] for key, value in latest_records(bootstrap, app_id, DEALS).items()}
    absent, checked = [], 0
    for input_topic, deal_topic in DEAL_TOPIC_OF.items():
        name = settings.topics.input_name(input_topic)
        for record in asyncio.run(read_topic(bootstrap, name)):
            if record.offset >= committed.get((name, record.partition), 0):
                continue
            event = decode(
                input_topic,
                record.key,
                record.value,
                now=record.timestamp / 1000,
                max_future_skew_seconds=settings.max_future_skew_seconds,
            )
            if not isinstance(event, DealEvent):
                continue  # rejected: counted in the intake tally, not in any deal
            checked += 1
            state = deals.get(event.deal_id.encode())
            marks = {} if state is None else {(t, p): o for t, p, o in state.offsets}
            if marks.get((deal_topic, record.partition), -1) < record.offset:
                absent.append(f"{name}[{record.partition}]@{record.offset} ({event.deal_id})")
    assert checked > 1000, f"only {checked} committed events to check"
    assert not absent, f"{len(absent)} of {checked} committed events are on no deal record: {absent[:10]}"


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
