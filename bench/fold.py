"""The fold alone, in-process: events per CPU second through the batch processor over dict stores.

    .venv/bin/python -m bench.fold [--events 300000] [--batch 10000] [--rounds 3]

No broker, no Faust: the figure moves only with LeadPulse's own code (decode, fold, aggregates,
output planning, record codec), so a change to the core can be compared against the one before it in
the same minute, where the worker's throughput on this noisy machine moves by 10-20% between runs.
The simulator's history (as ``bench.run`` plays it, 4 partitions by key), fed in batches like fetched
ones, with a fixed clock; the objects of the input are frozen out of the garbage collector (a worker
does not hold its input), and the time the collector took is printed. The digest of every deal record
and aggregate cell tells whether the rounds folded to the same state. The history ends at the current
time, so two runs at different moments fold different timestamps: their digests differ even when the
code does not.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import statistics
import time
import zlib

from bench.dataset import simulated_events
from streams.config import load_settings
from streams.ingest.deadletter import InputMessage
from streams.outputs.emitter import Record
from streams.worker.in_memory import in_memory_worker


def inputs(events: int) -> tuple[list[InputMessage], float]:
    """The history as input messages (partition by key, offsets per partition), and a clock just after it."""
    now = time.time()
    offsets: dict[tuple[str, int], int] = {}
    out = []
    for message in simulated_events(events, 20):
        partition = zlib.crc32(message.key or b"") % 4
        offset = offsets.get((message.topic, partition), 0)
        offsets[(message.topic, partition)] = offset + 1
        out.append(InputMessage(message.topic, partition, offset, message.key, message.value, int(now * 1000)))
    return out, now + 60


async def fold_once(messages: list[InputMessage], now: float, batch: int) -> tuple[float, float, str]:
    """CPU seconds, of which collector seconds, and the digest of the state it folded to."""

    async def keep(records: list[Record]) -> list:
        return []

    worker = in_memory_worker(load_settings(), clock=lambda: now, send_records=keep)
    collected = [0.0, 0.0]

    def timed(phase: str, _info: dict) -> None:
        if phase == "start":
            collected[1] = time.process_time()
        else:
            collected[0] += time.process_time() - collected[1]

    gc.callbacks.append(timed)
    began = time.process_time()
    try:
        for start in range(0, len(messages), batch):
            await worker.processor.take(messages[start : start + batch])
            await worker.processor.flush()
    finally:
        gc.callbacks.remove(timed)
    cpu = time.process_time() - began
    digest = hashlib.blake2b(digest_size=8)
    for key, value in sorted(worker.deals.items()):
        digest.update(key + value)
    for partition in worker.rollups.partitions():
        rollup = worker.rollups.partition(partition)
        assert rollup is not None
        digest.update(repr(sorted((repr(key), value) for key, value in rollup.sums.items())).encode())
    return cpu, collected[0], digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=10_000, help="events per batch (LEADPULSE_BATCH_MAX_EVENTS)")
    parser.add_argument("--rounds", type=int, default=3, help="folds of the same input; the median is printed")
    args = parser.parse_args()
    messages, now = inputs(args.events)
    gc.collect()
    gc.freeze()
    rounds = [asyncio.run(fold_once(messages, now, args.batch)) for _ in range(args.rounds)]
    cpu = statistics.median(cpu for cpu, _gc, _digest in rounds)
    collected = statistics.median(seconds for _cpu, seconds, _digest in rounds)
    digests = {digest for _cpu, _gc, digest in rounds}
    print(
        f"fold: {len(messages):,} events, {args.batch:,} per batch, median of {args.rounds}: "
        f"{len(messages) / cpu:,.0f} events per CPU second, {cpu / len(messages) * 1e6:.1f} CPU µs per event "
        f"(garbage collection {collected / cpu:.0%}); state digest {', '.join(sorted(digests))}"
    )


if __name__ == "__main__":
    main()
