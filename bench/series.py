"""The series budget (SPEC §3): one worker's /metrics with 1,000 reps in 50 teams, 7 sources and
a month of traffic.

    .venv/bin/python -m bench.series [--days 30] [--rate 0.6] [--reps-per-team 20]

Plays the simulator's month into the batch processor in-process (dict tables, no broker), then
renders /metrics as the worker would and prints the series per family, the total, and how long
a scrape takes (the median of five). 50 teams of 20 SDRs and 10 AEs are 1,500 reps; pass
``--reps-per-team 14`` for 1,050.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter

from prometheus_client import CollectorRegistry, generate_latest

from streams.config import load_settings
from streams.deadletter import InputMessage
from streams.exporter.collector import LeadPulseCollector, Ownership
from streams.fold.contributions import FoldContext
from streams.periods import Calendar
from streams.processor import BatchProcessor, DictKeyStore
from streams.profile_sync import ProfileSync
from streams.profiles import RepDirectory
from streams.rollups import Rollups
from streams.simulate import SOURCES, CrmSimulation

BATCH = 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--rate", type=float, default=0.6, help="simulated events per second")
    parser.add_argument("--reps-per-team", type=int, default=14)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--profile", action="store_true", help="print where one scrape spends its time")
    args = parser.parse_args()
    settings = load_settings()
    teams = tuple(f"t{number:02d}" for number in range(args.teams))
    simulation = CrmSimulation(
        settings,
        seed=5,
        rate=args.rate,
        reps_per_team=args.reps_per_team,
        teams=teams,
        sources=(*SOURCES, ("webinar", 5)),
    )
    now = time.time()
    start = now - args.days * 86400
    deals, intake, profiles, rep_intake = DictKeyStore(), DictKeyStore(), DictKeyStore(), DictKeyStore()
    directory = RepDirectory(profiles)
    rollups = Rollups(FoldContext(Calendar("UTC"), directory, settings.sla_policy()), settings.retention.by_kind())
    sync = ProfileSync(directory, rollups, deals)

    async def nothing(*_: object) -> None:
        return None

    processor = BatchProcessor(
        settings,
        deals=deals,
        intake=intake,
        rep_profiles=profiles,
        rep_intake=rep_intake,
        rollups=rollups,
        publish_dead_letter=nothing,
        clock=lambda: now,
        before_deal_batch=sync,
    )
    offsets: Counter[tuple[str, int]] = Counter()

    def messages(batch: list) -> list[InputMessage]:
        out = []
        for message in batch:
            partition = hash(message.key) % 4
            out.append(
                InputMessage(message.topic, partition, offsets[(message.topic, partition)], message.key, message.value)
            )
            offsets[(message.topic, partition)] += 1
        return out

    asyncio.run(processor.process_rep_messages(messages(simulation.profiles(start - 60))))
    played, started, batch = 0, time.perf_counter(), []

    async def play() -> int:
        nonlocal batch
        count = 0
        for message in simulation.backfill(start, now, step=60):
            batch.append(message)
            if len(batch) >= BATCH:
                await processor.process_deal_messages(messages(batch))
                count += len(batch)
                batch = []
        if batch:
            await processor.process_deal_messages(messages(batch))
            count += len(batch)
        return count

    played = asyncio.run(play())
    elapsed = time.perf_counter() - started
    registry = CollectorRegistry(auto_describe=True)
    registry.register(
        LeadPulseCollector(
            settings,
            rollups=rollups,
            directory=directory,
            intake=intake,
            rep_intake=rep_intake,
            ownership=lambda: Ownership(True, frozenset(range(4)), frozenset(range(4))),
            version="bench",
            clock=lambda: now,
        )
    )
    timings = []
    for _ in range(5):
        began = time.perf_counter()
        text = generate_latest(registry).decode()
        timings.append(time.perf_counter() - began)
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(generate_latest, registry)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    per_family: Counter[str] = Counter()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            for suffix in ("_bucket", "_count", "_sum"):
                name = name.removesuffix(suffix)
            per_family[name] += 1
    reps = len(directory.reps())
    print(
        f"played {played:,} messages of {args.days:.0f} days in {elapsed:.0f}s ({played / elapsed:,.0f}/s in-process)"
    )
    print(f"{reps} reps in {len(teams)} teams, {len(deals):,} deals")
    for name, count in per_family.most_common():
        print(f"  {count:8,}  {name}")
    print(f"series: {sum(per_family.values()):,}; scrape (median of 5): {statistics.median(timings) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
