"""``leadpulse simulate``: the simulated floor (:mod:`streams.simulator.floor`) played to Kafka,
its recent history at once and then live."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time

from aiokafka import AIOKafkaProducer

from streams.config import Settings
from streams.kafka.topics import client_options
from streams.simulator.floor import CrmSimulation

log = logging.getLogger(__name__)


async def _produce(
    settings: Settings, *, rate: float, seed: int, duration: float | None, warmup: float, parent_pid: int | None
) -> int:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.broker, linger_ms=10, acks="all", max_batch_size=1 << 18, **client_options(settings)
    )
    await producer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    sent = 0
    try:
        now = time.time()
        simulation = CrmSimulation(settings, seed=seed, rate=rate)
        for message in [*simulation.profiles(now - warmup - 60), *simulation.backfill(now - warmup, now)]:
            await producer.send(message.topic, message.value, key=message.key)
            sent += 1
        log.info("simulator: played %d messages of the last %.0f s; now %.1f events/s live", sent, warmup, rate)
        started = time.monotonic()
        while not stop.is_set() and (duration is None or time.monotonic() - started < duration):
            if parent_pid is not None and os.getppid() != parent_pid:
                log.info("simulator: the demo that started it is gone; stopping")
                break
            for message in simulation.until(time.time()):
                await producer.send(message.topic, message.value, key=message.key)
                sent += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
        await producer.flush()
    finally:
        await producer.stop()
    log.info("simulator: sent %d messages", sent)
    return sent


def run_simulator(
    settings: Settings,
    *,
    rate: float,
    seed: int,
    duration: float | None,
    warmup: float = 1800,
    parent_pid: int | None = None,
) -> int:
    """Produce until stopped; with ``parent_pid``, also stop when that process is gone."""
    asyncio.run(_produce(settings, rate=rate, seed=seed, duration=duration, warmup=warmup, parent_pid=parent_pid))
    return 0
