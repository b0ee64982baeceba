"""Latency at a steady input rate: an event produced -> visible in /metrics, and -> its record
in ``leadpulse.lead-responses``.

One worker (the default RocksDB store) takes the simulator's history, produced at a steady
``rate`` events/s by another process, while this one sends a probe every ``PROBE_SECONDS``: a
new inbound lead and, at once, its first touch. Timed from the moment the touch was handed to
the producer:

- visible: the worker's answer to ``GET /deals/{probe}`` first shows the response. The API reads
  the same batch's writes as /metrics (the aggregates are updated in the same step, before the
  deal record), and polling /metrics itself would be the load; at most ``POLL_WINDOW`` probes
  are asked at a time, every ``POLL_SECONDS``;
- output: the probe's lead-response record reaches a consumer of the topic (no group).

Probes of the first ``WARMUP_SECONDS`` are left out. Printed with p50/p99: how many probes,
and the input the worker committed against what was produced (behind = queueing, not latency).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.consumers import DEAL_TOPICS
from bench.dataset import iso, produce_at
from bench.throughput import leadpulse_env, ready, wait
from streams.kafka.topics import committed_total

PROBE_SECONDS = 0.1
POLL_SECONDS = 0.01
POLL_WINDOW = 8
WARMUP_SECONDS = 10
RESPONSES = "leadpulse.lead-responses"


@dataclass
class Probe:
    deal: str
    sent: float = 0.0
    visible: float | None = None
    output: float | None = None


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(share * len(ordered)) - 1)] if ordered else float("nan")


async def _watch_outputs(bootstrap: str, probes: dict[str, Probe], ready: asyncio.Event, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(RESPONSES, p) for p in sorted(consumer.partitions_for_topic(RESPONSES) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)
        ready.set()
        while not stop.is_set():
            for records in (await consumer.getmany(timeout_ms=50)).values():
                arrived = time.perf_counter()
                for record in records:
                    probe = probes.get((record.key or b"").decode())
                    if probe is not None and probe.output is None:
                        probe.output = arrived
    finally:
        await consumer.stop()


async def _watch_api(base: str, pending: list[Probe], stop: asyncio.Event) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def ask(probe: Probe) -> None:
            async with session.get(f"{base}/deals/{probe.deal}") as response:
                if response.status == 200 and orjson.loads(await response.read()).get("first_response"):
                    probe.visible = time.perf_counter()

        while not stop.is_set():
            began = time.perf_counter()
            pending[:] = [probe for probe in pending if probe.visible is None]
            await asyncio.gather(*(ask(probe) for probe in pending[:POLL_WINDOW]))
            await asyncio.sleep(max(0.0, began + POLL_SECONDS - time.perf_counter()))


async def _probe(bootstrap: str, base: str, seconds: float, rep: str) -> list[Probe]:
    probes: dict[str, Probe] = {}
    pending: list[Probe] = []
    stop, ready = asyncio.Event(), asyncio.Event()
    outputs = asyncio.create_task(_watch_outputs(bootstrap, probes, ready, stop))
    await asyncio.wait_for(ready.wait(), 60)
    api = asyncio.create_task(_watch_api(base, pending, stop))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks=1)
    await producer.start()
    try:
        began = time.perf_counter()
        for number in range(int(seconds / PROBE_SECONDS)):
            await asyncio.sleep(max(0.0, began + number * PROBE_SECONDS - time.perf_counter()))
            deal, now = f"probe-{number:06d}", time.time()
            common = {"deal_id": deal, "rep_id": rep}
            lead = {"event_id": f"{deal}-new", "occurred_at": iso(now), "stage": "new", "source": "inbound_demo"}
            touch = {"event_id": f"{deal}-call", "occurred_at": iso(now), "call_id": f"{deal}-call"}
            touch |= {"direction": "outbound", "outcome": "no_answer", "talk_seconds": 0}
            await producer.send(DEAL_TOPICS[0], orjson.dumps(lead | common), key=deal.encode())
            await producer.send(DEAL_TOPICS[1], orjson.dumps(touch | common), key=deal.encode())
            probe = probes[deal] = Probe(deal, time.perf_counter())
            pending.append(probe)
        deadline = time.perf_counter() + 60  # the last probes: seen, or a minute
        while time.perf_counter() < deadline and any(p.output is None or p.visible is None for p in probes.values()):
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.gather(outputs, api, return_exceptions=True)
        await producer.stop()
    return [probe for probe in probes.values() if probe.sent - began >= WARMUP_SECONDS]


def measure(bootstrap: str, scratch: Path, messages: list, rate: float, seconds: float) -> dict[str, float]:
    """Run the worker and the load, probe, and return the figures."""
    app_id = "bench-latency"
    env = leadpulse_env(bootstrap, app_id, scratch / app_id)
    base = f"http://127.0.0.1:{env['LEADPULSE_WEB_PORT']}"
    worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=env, stdout=subprocess.DEVNULL)
    load = None
    try:
        wait(lambda: ready(env["LEADPULSE_WEB_PORT"]), "latency: the worker to be ready", worker, timeout=120)
        wanted = min(len(messages), int(rate * seconds))
        load = multiprocessing.get_context("spawn").Process(
            target=produce_at, args=(bootstrap, messages[:wanted], rate), daemon=True
        )
        load.start()
        rep = next(m.key.decode() for m in messages if m.topic == "crm.reps")
        probes = asyncio.run(_probe(bootstrap, base, seconds, rep))
        load.join(120)
        committed = asyncio.run(committed_total(bootstrap, app_id, DEAL_TOPICS))
        visible = [(p.visible - p.sent) * 1000 for p in probes if p.visible is not None]
        output = [(p.output - p.sent) * 1000 for p in probes if p.output is not None]
        return {
            "probes": len(probes),
            "visible_p50": statistics.median(visible) if visible else float("nan"),
            "visible_p99": percentile(visible, 0.99),
            "output_p50": statistics.median(output) if output else float("nan"),
            "output_p99": percentile(output, 0.99),
            "unseen": sum(p.visible is None or p.output is None for p in probes),
            "produced": wanted + 2 * int(seconds / PROBE_SECONDS),
            "committed": committed,
        }
    finally:
        if load is not None and load.is_alive():
            load.terminate()
        worker.terminate()
        worker.wait(60)
