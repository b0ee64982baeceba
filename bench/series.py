"""The series budget (SPEC §3): one worker's /metrics with 1,000 reps in 50 teams, 7 sources and
a quarter of traffic, at the busiest hour, and what a scrape of it costs at rest and under load.

    .venv/bin/python -m bench.series [--days 91] [--rate 0.6] [--reps-per-team 14]

Plays the simulator's quarter into the batch processor in-process (dict tables, no broker) and
renders /metrics as the worker does (``LeadPulseCollector.exposition``). The worker owns every
partition: the most series one worker can hold. Printed: series per family and in total; the first
scrape (every cell read: what follows a restart or a rebalance); scrapes at rest (median of five);
and scrapes under load: the quarter's last two hours are held back and another simulation's traffic
is played instead, a scrape after each 75,000 events (what ``--load-window`` 15 s, Prometheus'
interval, brings at ``--load-rate`` 5,000 events/s; spread over two hours of event time, so more
cells change than in a real 15 s), printed with the cells it found changed. The rest of those two
hours is then played: about 30 events/s, so every SDR answers leads and every AE closes deals in the
current hour, and the series are counted again: that is the busiest hour, the budget's figure. 50
teams of 14 SDRs and AEs are 1,050 reps (``--reps-per-team 13`` for 950).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable

from streams.config import load_settings
from streams.exporter.collector import LeadPulseCollector, Ownership
from streams.fold.periods import Calendar
from streams.ingest.deadletter import InputMessage
from streams.ingest.processor import BatchProcessor
from streams.simulator.floor import SOURCES, CrmSimulation
from streams.worker.in_memory import in_memory_worker

BATCH = 2000
LIVE_HOURS = 2


async def play(processor: BatchProcessor, messages: Callable[[list], list[InputMessage]], stream: Iterable) -> int:
    """Feeds the stream to the processor in batches of ``BATCH``; returns how many messages."""
    count, batch = 0, []
    for message in stream:
        batch.append(message)
        if len(batch) >= BATCH:
            await processor.process_deal_messages(messages(batch))
            count, batch = count + len(batch), []
    if batch:
        await processor.process_deal_messages(messages(batch))
        count += len(batch)
    return count


def series_by_family(exposition: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for line in exposition.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            for suffix in ("_bucket", "_count", "_sum"):
                name = name.removesuffix(suffix)
            found[name] += 1
    return found


def reps_in_period(exposition: str, period: str) -> int:
    """Distinct ``rep`` label values on series of ``period``."""
    marker = f'period="{period}"'
    lines = (line for line in exposition.splitlines() if marker in line and 'rep="' in line)
    return len({line.split('rep="', 1)[1].split('"', 1)[0] for line in lines})


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=91)
    parser.add_argument("--rate", type=float, default=0.6, help="simulated events per second")
    parser.add_argument("--reps-per-team", type=int, default=14)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--load-rate", type=float, default=5000, help="live events per second after the quarter")
    parser.add_argument("--load-window", type=float, default=15, help="seconds between two scrapes under load")
    parser.add_argument("--load-scrapes", type=int, default=3, help="scrapes under load")
    parser.add_argument("--profile", action="store_true", help="print where the first scrape spends its time")
    return parser.parse_args(argv)


def measure(args: argparse.Namespace) -> dict:
    """Play the quarter, scrape, play the busy hours, and return the figures."""
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
    # The last second of this hour: the hour then holds a whole hour of the busy traffic (the busiest).
    now = (time.time() // 3600 + 1) * 3600 - 1
    start = now - args.days * 86400
    worker = in_memory_worker(settings, clock=lambda: now, calendar=Calendar("UTC"))
    deals, intake, rep_intake = worker.deals, worker.intake, worker.rep_intake
    directory, rollups, processor = worker.directory, worker.rollups, worker.processor
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
    per_window = int(args.load_rate * args.load_window)  # what 15 s at 5,000 events/s bring
    held_back = LIVE_HOURS * 3600
    began = time.perf_counter()
    played = asyncio.run(play(processor, messages, simulation.backfill(start, now - held_back, step=60)))
    elapsed, quarter_played = time.perf_counter() - began, played
    collector = LeadPulseCollector(
        settings,
        rollups=rollups,
        directory=directory,
        intake=intake,
        rep_intake=rep_intake,
        ownership=lambda: Ownership(True, frozenset(range(4)), frozenset(range(4))),
        version="bench",
        clock=lambda: now,
    )
    began = time.perf_counter()
    quiet = collector.exposition().decode()
    first = time.perf_counter() - began
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(collector.exposition)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    loaded = []
    live = CrmSimulation(  # its own deals, over the quarter's last hours (lifecycles span hours)
        settings,
        seed=6,
        rate=per_window * args.load_scrapes / held_back,
        reps_per_team=args.reps_per_team,
        teams=teams,
        sources=(*SOURCES, ("webinar", 5)),
        first_deal=10**8,
    )
    stream = live.backfill(now - held_back, now)
    for _ in range(args.load_scrapes):
        window = itertools.islice(stream, per_window)
        played += asyncio.run(play(processor, messages, window))
        changed = sum(len(rollups.partition(p).changes or ()) for p in rollups.partitions())  # type: ignore[union-attr]
        began = time.perf_counter()
        collector.exposition()
        loaded.append((changed, time.perf_counter() - began))
    played += asyncio.run(play(processor, messages, stream))  # the rest of the busy hours
    timings = []
    for _ in range(5):
        began = time.perf_counter()
        text = collector.exposition().decode()
        timings.append(time.perf_counter() - began)
    per_family = series_by_family(text)
    return {
        "played": played,
        "rate": quarter_played / elapsed,
        "reps": len(directory.reps()),
        "teams": len(teams),
        "deals": len(deals),
        "per_family": per_family,
        "series": sum(per_family.values()),  # at the busiest hour
        "series_quiet_hour": sum(series_by_family(quiet).values()),  # the last two hours held back
        "reps_this_hour": reps_in_period(text, "hour"),
        "first_ms": first * 1000,
        "rest_ms": statistics.median(timings) * 1000,
        "loaded": [(per_window, changed, seconds * 1000) for changed, seconds in loaded],
    }


def main() -> None:
    args = arguments()
    figures = measure(args)
    print(f"played {figures['played']:,} messages of {args.days:.0f} days ({figures['rate']:,.0f}/s in-process)")
    print(f"{figures['reps']} reps in {figures['teams']} teams, {figures['deals']:,} deals")
    for name, count in figures["per_family"].most_common():
        print(f"  {count:8,}  {name}")
    print(
        f"series at the busiest hour: {figures['series']:,} ({figures['reps_this_hour']:,} reps with figures"
        f" this hour); with the last two hours quiet: {figures['series_quiet_hour']:,}"
    )
    print(f"first scrape (every cell): {figures['first_ms']:.0f} ms")
    print(f"scrape at rest (median of 5): {figures['rest_ms']:.0f} ms")
    for events, changed, ms in figures["loaded"]:
        print(f"scrape after {events:,} more events ({changed:,} changed cells): {ms:.0f} ms")


if __name__ == "__main__":
    main()
