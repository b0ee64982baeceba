"""The ceiling: a bare aiokafka consumer decoding every value, committing after each fetch."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

import orjson
from aiokafka import AIOKafkaConsumer

from bench.consumers import BATCH, DEAL_TOPICS


async def consume(bootstrap: str, group: str) -> None:
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    consumer = AIOKafkaConsumer(
        *DEAL_TOPICS,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=BATCH,
        fetch_max_bytes=64 << 20,
        max_partition_fetch_bytes=16 << 20,
        session_timeout_ms=6000,  # Tansu's first join waits half of it
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    with contextlib.suppress(orjson.JSONDecodeError):  # the simulator sends some bad JSON
                        orjson.loads(record.value)
            await consumer.commit()
    finally:
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(consume(sys.argv[1], sys.argv[2]))
