"""Broker faults: the worker says so, reports not ready, serves no stale figures, and recovers
to exactly the numbers of a worker that never saw the fault."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.config import load_settings, topic_names
from streams.kafka.broker import EmbeddedBroker
from streams.kafka.topics import committed_offsets, committed_total, ensure_topics
from streams.worker.engine import changelog_topics
from tests.harness import (
    EVERY_FIGURE,
    Sample,
    Unmet,
    WorkerProcess,
    assert_same_figures,
    get_status,
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

FREEZE_SECONDS = 20  # the fault's length (SPEC of the reliability issue), not a wait for a condition
COMMIT_WINDOW_SECONDS = 60  # longer than a test's fault: the fault falls inside a commit window


def readiness(worker: WorkerProcess) -> tuple[int, dict]:
    return get_status(f"{worker.url}/health/ready")


def against_a_fresh_worker(
    fresh: WorkerProcess, worker: WorkerProcess, messages: int
) -> tuple[dict[Sample, float], dict[Sample, float]]:
    """Start ``fresh`` (it did not see the fault: the truth), let it read the ``messages``, and scrape
    both at the same moment; ``worker`` must still be running."""
    fresh.start()
    wait_until(lambda: fresh.has_processed(messages), 120, "the fresh run")
    expected, actual = settled_pair(fresh, worker, EVERY_FIGURE)
    assert worker.process is not None and worker.process.poll() is None, "the worker exited"
    return expected, actual


def test_a_frozen_broker_makes_the_worker_not_ready_until_it_answers_then_nothing_is_lost(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    messages = simulated_messages(20 * 60)
    half = len(messages) // 2
    worker = WorkerProcess(
        broker.bootstrap, "frozen", tmp_path / "frozen", extra_env={"LEADPULSE_BROKER_SILENCE_SECONDS": "5"}
    )
    worker.start()
    fresh = WorkerProcess(broker.bootstrap, "fresh", tmp_path / "fresh")
    try:
        asyncio.run(produce(broker.bootstrap, messages[:half]))
        wait_until(lambda: worker.has_processed(half), 60, "the first half")
        frozen_at = time.monotonic()
        broker.send_signal(signal.SIGSTOP)
        try:
            wait_until(lambda: readiness(worker)[0] == 503, FREEZE_SECONDS, "the worker to say it is not ready")
            _, body = readiness(worker)
            assert body["error"].startswith("the broker has not answered for"), body
            figures = worker.scrape()
            assert not select(figures, "leadpulse_calls_total"), "stale figures served while the broker is silent"
            assert total(figures, "leadpulse_build_info") == 1
            time.sleep(max(0.0, FREEZE_SECONDS - (time.monotonic() - frozen_at)))
        finally:
            broker.send_signal(signal.SIGCONT)
        wait_until(lambda: readiness(worker)[0] == 200, 120, "the worker to be ready again")
        asyncio.run(produce(broker.bootstrap, messages[half:]))
        wait_until(lambda: worker.has_processed(len(messages)), 120, "all messages")
        expected, actual = against_a_fresh_worker(fresh, worker, len(messages))  # it never saw the fault
    finally:
        worker.stop()
        fresh.stop()
    assert_same_figures(expected, actual)
    assert total(actual, "leadpulse_calls_total") > 500
    log = (worker.data_dir / "worker.log").read_text()
    assert "the broker has not answered for" in log and "the broker answers again" in log
    assert "exiting without committing" not in log


def provision(bootstrap: str, app_id: str) -> None:
    """What a deployment does for a new, empty cluster: the topics, as the worker declares them."""
    settings = load_settings(broker=bootstrap, app_id=app_id)
    deal_changelogs, global_changelogs = changelog_topics(settings)
    asyncio.run(
        ensure_topics(settings, bootstrap, deal_changelogs=deal_changelogs, global_changelogs=global_changelogs)
    )


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
def test_a_broker_back_empty_makes_the_worker_start_over_from_what_it_holds(store: str, tmp_path: Path) -> None:
    """The broker is killed and comes back empty on the same address (Tansu keeps nothing). The
    worker says so, is not ready meanwhile, starts over once (same process), and then shows exactly
    what a worker that only ever saw the new broker shows: nothing of the old broker's events.

    The kill falls inside a commit window, as it usually would: the worker has acked offsets it has
    not committed yet. It used to commit them to the new broker when it rejoined the group there,
    before it found the loss; its new image then trusted them, and on ``crm.reps``, whose new log
    ends where the old one did, skipped every profile (issue 19)."""
    messages = simulated_messages(20 * 60)
    again = messages[: len(messages) // 3]  # what the new broker gets: fewer events on every partition
    first = EmbeddedBroker(log_path=tmp_path / "tansu-first.log").start()
    worker = WorkerProcess(
        first.bootstrap,
        "emptied",
        tmp_path / "emptied",
        extra_env={
            "LEADPULSE_BROKER_SILENCE_SECONDS": "5",
            "LEADPULSE_STORE": store,
            "LEADPULSE_COMMIT_INTERVAL_SECONDS": str(COMMIT_WINDOW_SECONDS),
        },
    )
    second = EmbeddedBroker(first.port, log_path=tmp_path / "tansu-second.log")
    fresh = WorkerProcess(first.bootstrap, "fresh", tmp_path / "fresh", extra_env={"LEADPULSE_STORE": store})
    try:
        worker.start()
        asyncio.run(produce(first.bootstrap, messages))
        wait_until(lambda: worker.has_processed(len(messages)), 90, "input")
        first.send_signal(signal.SIGKILL)
        wait_until(lambda: readiness(worker)[0] == 503, 30, "the worker to say it is not ready")
        assert readiness(worker)[1]["error"].startswith("the broker has not answered for")
        assert not select(worker.scrape(), "leadpulse_calls_total"), "stale figures served while the broker is gone"
        # A new cluster is provisioned before clients write to it. Tansu creates any topic a producer
        # names, and that racing the provisioning was seen to corrupt partitions (an end offset counting
        # a record no fetch returns; produce error -1): the worker waits, frozen, meanwhile.
        assert worker.process is not None
        worker.process.send_signal(signal.SIGSTOP)
        try:
            second.start()
            provision(second.bootstrap, "emptied")
        finally:
            worker.process.send_signal(signal.SIGCONT)
        asyncio.run(produce(second.bootstrap, again))

        def counts_the_new_broker_only() -> bool | Unmet:
            status, body = readiness(worker)
            if status != 200:
                return Unmet(f"{status} from /health/ready: {body}")
            figures = worker.scrape()
            processed = total(figures, "leadpulse_events_processed_total")
            assert processed <= len(again), f"ready with the old broker's figures: {processed} events processed"
            by_topic = {
                dict(labels)["topic"]: n for labels, n in select(figures, "leadpulse_events_processed_total").items()
            }
            return processed == len(again) or Unmet(
                f"ready, {processed:.0f} of {len(again)} events processed: {by_topic}"
            )

        wait_until(counts_the_new_broker_only, 120, "the worker to start over and count the new broker's events")
        expected, actual = against_a_fresh_worker(fresh, worker, len(again))  # it only ever saw the new broker
    finally:
        worker.stop()
        fresh.stop()
        first.stop()
        second.stop()
    assert_same_figures(expected, actual)
    assert total(actual, "leadpulse_calls_total") > 100
    log = (worker.data_dir / "worker.log").read_text()
    assert log.count("starting over from what the broker holds") == 1, "started over more than once"
    assert "the broker lost data this worker holds: " in log
    assert "this worker has started over 1 time(s)" in log
    assert "started over: what the changelogs hold" in log  # checked what the old image's queued writes left
    assert "exiting without committing" not in log


async def commit_past_the_end(bootstrap: str, group: str, topics: list[str], beyond: int) -> None:
    """Commit, for ``group``, offsets ``beyond`` past the end of every partition of ``topics``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for topic in topics for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit({tp: ends[tp] + beyond for tp in partitions})
    finally:
        await consumer.stop()


def test_committed_offsets_past_the_end_of_the_log_are_read_from_the_start(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """A group whose committed offsets lie past the end of their logs (the broker lost the tail it
    had acknowledged, as after an unclean leader election): a worker holding none of that data
    reads every partition from its start, where aiokafka alone would leave Faust dropping every
    record below the offset."""
    provision(broker.bootstrap, "stale")
    messages = simulated_messages(10 * 60)
    asyncio.run(produce(broker.bootstrap, messages))
    inputs = [*topic_names(load_settings()).values(), load_settings().topics.reps]
    asyncio.run(commit_past_the_end(broker.bootstrap, "stale", inputs, 300))
    worker = WorkerProcess(broker.bootstrap, "stale", tmp_path / "stale")
    try:
        worker.start()
        wait_until(lambda: worker.has_processed(len(messages)), 60, "every message, read from the start")
    finally:
        worker.stop()
    log = (worker.data_dir / "worker.log").read_text()
    assert log.count("past the end of its log") == len(inputs) * 4, "every input partition (4 each)"


def embedded_brokers_started(worker: WorkerProcess) -> list[str]:
    log = (worker.data_dir / "worker.log").read_text()
    return re.findall(r"started an embedded Tansu broker on (\S+)\.", log)


def test_the_embedded_broker_exiting_makes_the_worker_start_over_with_a_new_one(tmp_path: Path) -> None:
    """The embedded broker keeps nothing, and nothing restarts it: the worker starts over (same
    process) with a new one, and shows none of the old one's events."""
    messages = simulated_messages(10 * 60)
    worker = WorkerProcess("", "embedded", tmp_path / "embedded", extra_env={"LEADPULSE_BROKER": ""})
    try:
        worker.start()
        assert worker.process is not None
        [bootstrap] = embedded_brokers_started(worker)
        asyncio.run(produce(bootstrap, messages))
        wait_until(lambda: worker.has_processed(len(messages)), 90, "input")
        children = Path(f"/proc/{worker.process.pid}/task/{worker.process.pid}/children").read_text().split()
        [tansu] = [pid for pid in children if "tansu" in Path(f"/proc/{pid}/cmdline").read_text()]
        os.kill(int(tansu), signal.SIGKILL)
        wait_until(lambda: len(embedded_brokers_started(worker)) == 2 and worker.ready(), 90, "a new broker")
        assert total(worker.scrape(), "leadpulse_events_processed_total") == 0, "the old broker's events"
        later = messages[: len(messages) // 2]
        asyncio.run(produce(embedded_brokers_started(worker)[1], later))
        wait_until(lambda: worker.has_processed(len(later)), 90, "new input")
        assert worker.process.poll() is None, "the worker exited"
    finally:
        worker.stop()
    log = (worker.data_dir / "worker.log").read_text()
    assert "the embedded broker exited with code -9, and it keeps nothing" in log
    assert log.count("starting over from what the broker holds") == 1


async def produce_noting(
    bootstrap: str, messages: list[tuple[str, bytes | None, bytes]], noted: set[int]
) -> set[tuple[str, int, int]]:
    """Produce in order; where (topic, partition, offset) each message numbered in ``noted`` landed."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        futures = {n: await producer.send(topic, value, key=key) for n, (topic, key, value) in enumerate(messages)}
        await producer.flush()
        return {(messages[n][0], (m := await futures[n]).partition, m.offset) for n in noted}
    finally:
        await producer.stop()


def test_an_unavailable_dead_letter_topic_holds_back_commits_and_loses_no_bad_event(tmp_path: Path) -> None:
    """While the dead-letter topic refuses records (tests/dlq_outage.py), good events are still
    counted and the worker stays ready; the bad events wait, nothing after them is committed, and
    the log and ``leadpulse_dead_letters_waiting`` say so. Once the topic is back, every bad event
    is dead-lettered and every figure equals a run that never saw the outage."""
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log").start()
    outage = tmp_path / "dead-letter-topic-is-down"
    outage.touch()
    messages = simulated_messages(20 * 60)
    bad = set(range(len(messages) // 10, len(messages), len(messages) // 10))  # ten or so, spread out
    bad.add(next(n for n, (topic, _key, _value) in enumerate(messages) if topic == "crm.reps"))  # and a profile
    for n in bad:
        topic, key, value = messages[n]
        messages[n] = (topic, key, value[: len(value) // 2])  # truncated JSON
    worker = WorkerProcess(
        broker.bootstrap,
        "dlq-outage",
        tmp_path / "worker",
        module="tests.dlq_outage",
        extra_env={"LEADPULSE_TEST_DLQ_OUTAGE_FILE": str(outage)},
    )
    fresh = WorkerProcess(broker.bootstrap, "dlq-fresh", tmp_path / "fresh")
    inputs = [*topic_names(load_settings()).values(), load_settings().topics.reps]
    try:
        worker.start()
        placed = asyncio.run(produce_noting(broker.bootstrap, messages, bad))
        wait_until(lambda: worker.has_processed(len(messages)), 90, "input")
        figures = worker.scrape()
        rejected = total(figures, "leadpulse_events_rejected_total")  # the simulator's own bad events too
        assert rejected >= len(bad) and total(figures, "leadpulse_dead_letters_waiting") == rejected
        assert readiness(worker)[0] == 200, "a dead-letter outage hides no figure"
        assert asyncio.run(records_in(broker.bootstrap, "leadpulse.dead-letter")) == 0
        committed = asyncio.run(committed_offsets(broker.bootstrap, "dlq-outage", inputs))
        for topic, partition, offset in placed:
            assert committed.get((topic, partition), 0) <= offset, f"committed past a bad event {topic}[{partition}]"
        outage.unlink()
        wait_until(
            lambda: asyncio.run(committed_total(broker.bootstrap, "dlq-outage", inputs)) == len(messages),
            90,
            "every input offset committed once the dead letters are taken",
        )
        assert total(worker.scrape(), "leadpulse_dead_letters_waiting") == 0
        records = asyncio.run(read_topic(broker.bootstrap, "leadpulse.dead-letter"))
        letters = [json.loads(record.value) for record in records]
        expected, actual = against_a_fresh_worker(fresh, worker, len(messages))
    finally:
        worker.stop()
        fresh.stop()
        broker.stop()
    where = {(letter["topic"], letter["partition"], letter["offset"]): letter["reason"] for letter in letters}
    assert len(where) == rejected and placed <= set(where), "every bad event dead-lettered"
    assert {where[place] for place in placed} == {"invalid_json"}
    assert_same_figures(expected, actual)
    log = (worker.data_dir / "worker.log").read_text()
    assert "the dead-letter topic leadpulse.dead-letter does not take records (KafkaTimeoutError: injected" in log
    assert "the dead-letter topic leadpulse.dead-letter takes records again" in log
    assert "exiting without committing" not in log
