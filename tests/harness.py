"""Helpers for broker tests: real worker processes on a real Tansu broker, over TCP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from streams.config import load_settings
from streams.kafka.broker import free_port
from streams.simulator.floor import CrmSimulation

Sample = tuple[str, frozenset[tuple[str, str]]]

# The samples of SPEC §3's must-exist metrics, written out from the spec (not from the catalog).
SPEC_SAMPLES = [
    "leadpulse_calls_total",
    "leadpulse_emails_total",
    "leadpulse_meetings_total",
    "leadpulse_deals_created_total",
    "leadpulse_leads_awaiting_response",
    "leadpulse_leads_sla_breached",
    "leadpulse_first_response_seconds_bucket",
    "leadpulse_first_response_seconds_count",
    "leadpulse_first_response_seconds_sum",
    "leadpulse_pipeline_deals",
    "leadpulse_pipeline_amount",
    "leadpulse_deals_won",
    "leadpulse_won_amount",
    "leadpulse_deals_lost",
    "leadpulse_events_duplicate_total",
]
# leadpulse_lead_oldest_awaiting_seconds moves with the clock and is compared with a tolerance;
# leadpulse_events_rejected_total is checked against the dataset's bad messages.

# The rest of the SPEC §3 catalog, as the README names it.
CATALOG_SAMPLES = [
    "leadpulse_first_response_by_source_seconds_bucket",
    "leadpulse_first_response_by_source_seconds_count",
    "leadpulse_first_response_by_source_seconds_sum",
    "leadpulse_first_response_business_seconds_bucket",
    "leadpulse_first_response_business_seconds_count",
    "leadpulse_first_response_business_seconds_sum",
    "leadpulse_re_response_seconds_bucket",
    "leadpulse_re_response_seconds_count",
    "leadpulse_re_response_seconds_sum",
    "leadpulse_sales_cycle_seconds_bucket",
    "leadpulse_sales_cycle_seconds_count",
    "leadpulse_sales_cycle_seconds_sum",
    "leadpulse_stage_dwell_seconds_bucket",
    "leadpulse_stage_dwell_seconds_count",
    "leadpulse_stage_dwell_seconds_sum",
    "leadpulse_activities",
    "leadpulse_activity_target",
    "leadpulse_activity_outcomes",
    "leadpulse_call_handle_seconds",
    "leadpulse_leads_created",
    "leadpulse_leads_qualified",
    "leadpulse_won_amount_previous_period",
    "leadpulse_stage_transitions",
    "leadpulse_deals_closed_after_proposal",
    "leadpulse_deals_lost_by_reason",
    "leadpulse_deals_slipped",
    "leadpulse_slipped_amount",
    "leadpulse_monthly_quota",
    "leadpulse_deals_won_by_deal_type",
    "leadpulse_won_amount_by_deal_type",
    "leadpulse_last_event_timestamp_seconds",
]
# Everything a fault test compares with an uninterrupted run: the catalog and the intake counters.
EVERY_FIGURE = [*SPEC_SAMPLES, *CATALOG_SAMPLES, "leadpulse_events_rejected_total", "leadpulse_events_processed_total"]


@dataclass(frozen=True)
class Unmet:
    """A condition's falsy answer that says what it saw, for :func:`wait_until`'s failure."""

    seen: str

    def __bool__(self) -> bool:
        return False


def wait_until(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.25) -> object:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` and what the last
    poll saw: its answer (an :class:`Unmet` says more than False), or the error it raised."""
    deadline = time.monotonic() + timeout
    last: str = "nothing: the condition was never polled"
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
            last = f"answered {result.seen if isinstance(result, Unmet) else repr(result)}"
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last = f"raised {exc!r}"
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; the last poll {last}")


@dataclass
class WorkerProcess:
    """``leadpulse worker`` as a child process with its own environment."""

    bootstrap: str
    app_id: str
    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    module: str = "streams.cli"  # or a wrapper that injects a fault (tests/dlq_outage.py)
    cwd: Path | None = None  # where it runs: ``-m`` imports from there first (an older release's tree)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WorkerProcess:
        env = {
            **os.environ,
            "LEADPULSE_BROKER": self.bootstrap,
            "LEADPULSE_APP_ID": self.app_id,
            "LEADPULSE_WEB_PORT": str(self.port),
            "LEADPULSE_DATA_DIR": str(self.data_dir),
            "LEADPULSE_SESSION_TIMEOUT_SECONDS": "6",
            "LEADPULSE_COMMIT_INTERVAL_SECONDS": "0.5",
            **self.extra_env,
        }
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "worker.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd
        )
        wait_until(self.ready, 90, f"worker {self.app_id} to be ready (log: {self.data_dir / 'worker.log'})")
        return self

    def ready(self) -> bool | Unmet:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"worker exited with {self.process.returncode}; see {self.data_dir / 'worker.log'}")
        try:
            with urllib.request.urlopen(f"{self.url}/health/ready", timeout=2) as response:
                return response.status == 200
        except urllib.error.HTTPError as error:
            return Unmet(f"{error.code} from /health/ready: {error.read().decode(errors='replace')[:300]}")

    def has_processed(self, expected: float) -> bool | Unmet:
        """Whether ``leadpulse_events_processed_total`` is ``expected``; if not, what it is."""
        processed = total(self.scrape(), "leadpulse_events_processed_total")
        return processed == expected or Unmet(f"{processed:.0f} of {expected:.0f} events processed")

    def scrape_text(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:
            return response.read().decode()

    def scrape(self) -> dict[Sample, float]:
        return parse_exposition(self.scrape_text())

    def scrape_value(self, name: str, **labels: str) -> float | None:
        return self.scrape().get((name, frozenset(labels.items())))

    def kill(self) -> None:
        """``kill -9``: no shutdown, no commit."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


def stop_process(process: subprocess.Popen[bytes], grace: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def simulated_messages(seconds: float, rate: float = 10) -> list[tuple[str, bytes | None, bytes]]:
    """The simulator's profiles and its traffic of the last ``seconds``, as messages to produce."""
    now = time.time()
    simulation = CrmSimulation(load_settings(), seed=3, rate=rate)
    messages = [*simulation.profiles(now - seconds - 60), *simulation.backfill(now - seconds, now)]
    return [(message.topic, message.key, message.value) for message in messages]


def get_status(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """An HTTP GET's status and JSON body, whatever the status."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def get_json(url: str, headers: dict[str, str] | None = None, unavailable_for: float = 60) -> Any:
    """An HTTP GET's JSON body; fails on any status but 200.

    A 503 is the API's "retry shortly" (a rebalance is under way: on a busy machine a missed
    heartbeat is enough): asked again after a moment, for ``unavailable_for`` seconds at most."""
    deadline = time.monotonic() + unavailable_for
    while True:
        status, body = get_status(url, headers)
        if status != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 200, (url, status, body)
    return body


def settled_pair(
    reference: WorkerProcess, other: WorkerProcess, names: Iterable[str], attempts: int = 20
) -> tuple[dict[Sample, float], dict[Sample, float]]:
    """Scrapes of two workers that reflect the same moment.

    Live gauges move with the clock (a lead passes its SLA; an hour ends), so two scrapes taken
    a fraction of a second apart can differ without any input. Scrape the reference, the other,
    then the reference again, and accept only when the reference did not move in between: the
    other's clock reading lies between the two, so it saw the same state of the world.
    """
    names = list(names)
    for _ in range(attempts):
        before, scraped, after = reference.scrape(), other.scrape(), reference.scrape()
        if all(select(before, name) == select(after, name) for name in names):
            return before, scraped
    raise AssertionError(f"{reference.app_id}'s metrics kept moving between scrapes ({attempts} attempts)")


def assert_same_figures(expected: dict[Sample, float], actual: dict[Sample, float]) -> None:
    """Every figure of :data:`EVERY_FIGURE` equal in two scrapes (from :func:`settled_pair`)."""
    for name in EVERY_FIGURE:
        assert select(actual, name) == pytest.approx(select(expected, name)), name


def parse_exposition(text: str) -> dict[Sample, float]:
    samples: dict[Sample, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def select(samples: dict[Sample, float], name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: value for (sample_name, labels), value in samples.items() if sample_name == name}


def total(samples: dict[Sample, float], name: str) -> float:
    return sum(select(samples, name).values())


async def produce(bootstrap: str, messages: Iterable[tuple[str, bytes | None, bytes]]) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    count = 0
    try:
        for topic, key, value in messages:
            await producer.send(topic, value, key=key)
            count += 1
        await producer.flush()
    finally:
        await producer.stop()
    return count


async def consume(bootstrap: str, topic: str, expected: int, timeout: float = 60) -> list:
    """Read a topic from the beginning (no group) until ``expected`` records arrived."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    records: list = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(records) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


async def records_in(bootstrap: str, topic: str) -> int:
    """How many records the topic holds now, by its end offsets (at most that many on Tansu, whose
    ListOffsets end can be short): enough to wait for a topic to be written to."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum((await consumer.end_offsets(partitions)).values()) if partitions else 0
    finally:
        await consumer.stop()


async def read_topic(bootstrap: str, topic: str, timeout: float = 30) -> list:
    """Every record in the topic now: read from the beginning up to each partition's high
    watermark as fetch responses report it (Tansu's ListOffsets end can be short)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    records: list = []
    try:
        await consumer.topics()  # fetches the cluster metadata
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        assert partitions, f"topic {topic} does not exist"
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = asyncio.get_running_loop().time() + timeout
        pending = set(partitions)
        while pending:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"could not read {topic} to its end within {timeout:.0f}s")
            batch = await consumer.getmany(*pending, timeout_ms=300)
            for partition_records in batch.values():
                records.extend(partition_records)
            for partition in list(pending):
                highwater = consumer.highwater(partition)
                if highwater is not None and await consumer.position(partition) >= highwater:
                    pending.discard(partition)
    finally:
        await consumer.stop()
    return records
