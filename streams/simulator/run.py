"""``leadpulse simulate``: the simulated floor (:mod:`streams.simulator.floor`) played to Kafka,
its history at once (:mod:`streams.simulator.history`) and then live."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from streams.config import Settings
from streams.kafka.topics import client_options
from streams.simulator.floor import CrmSimulation
from streams.simulator.history import History

log = logging.getLogger(__name__)

# The line the simulator prints on stdout once its history is in the broker; the demo reads it to
# tell when the worker has folded the history (``HISTORY_SENT <messages> <start, ISO 8601>``).
HISTORY_SENT = "leadpulse-simulator history-sent"


def history_sent_line(messages: int, start: float) -> str:
    return f"{HISTORY_SENT} {messages} {datetime.fromtimestamp(start, UTC).isoformat()}"


def parse_history_sent(line: str) -> tuple[int, datetime] | None:
    """(messages, start) of a :func:`history_sent_line`; None for any other line."""
    if not line.startswith(HISTORY_SENT + " "):
        return None
    count, start = line[len(HISTORY_SENT) + 1 :].split()
    return int(count), datetime.fromisoformat(start)


def _announce(line: str) -> None:
    print(line, flush=True)


async def _produce(
    settings: Settings,
    *,
    rate: float,
    seed: int,
    duration: float | None,
    history: Callable[[float], History],
    parent_pid: int | None,
    announce: Callable[[str], None],
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
        past = history(now)
        simulation = CrmSimulation(settings, seed=seed, rate=past.rate)
        for message in [*simulation.profiles(past.start - 60), *simulation.backfill(past.start, now, step=60)]:
            await producer.send(message.topic, message.value, key=message.key)
            sent += 1
            if stop.is_set():
                return sent
        await producer.flush()
        announce(history_sent_line(sent, past.start))
        since = datetime.fromtimestamp(past.start, UTC).isoformat(timespec="minutes")
        log.info("simulator: played %d messages since %s; now %.1f events/s live", sent, since, rate)
        simulation.change_rate(rate, now)
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
    history: Callable[[float], History],
    parent_pid: int | None = None,
    announce: Callable[[str], None] = _announce,
) -> int:
    """Replay ``history(now)``, then produce live until stopped; with ``parent_pid``, also stop when
    that process is gone."""
    asyncio.run(
        _produce(
            settings,
            rate=rate,
            seed=seed,
            duration=duration,
            history=history,
            parent_pid=parent_pid,
            announce=announce,
        )
    )
    return 0
