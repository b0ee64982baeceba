"""The benchmark: one command, one table, every figure next to baselines from the same run.

    python3 dev.py bench [--seconds 21600 | --events N] [--rate 20] [--only throughput,profile,latency,restart,series]

- throughput: the simulator's history (``--seconds`` at ``--rate`` events/s: about 340,000
  messages; or exactly ``--events`` deal events, e.g. 1000000) in one Tansu broker; each consumer
  on its own group, timed from its launch until the group has committed all input, with its start-up
  (launch to first commit) and CPU time per event (``bench.throughput``): raw aiokafka (the
  ceiling), Quix Streams with one stateful counter (in the benchmark's own virtualenv), Faust
  ``take()`` with no work, a naive Faust agent, and LeadPulse (whole catalog, RocksDB, durable) with 1, 2 and 4 workers;
- profile: where one LeadPulse worker spends that catch-up, the top entries of py-spy's samples of its
  main thread (``bench.profile``);
- latency at a steady 5,000 events/s (``bench.latency``);
- restart to ready, the rebuild per deal (with py-spy, where its time goes) and memory per open deal
  at 10,000 and 100,000 deals per store, and at 1,000,000 deals with RocksDB (``bench.restart``);
- scrape: series and milliseconds per /metrics at 1,050 reps with a month of data (``bench.series``).

Absolute figures move 2-3x between machines; the ratios, measured in the same run, much less.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from bench import latency, profile, restart, series, throughput
from bench.dataset import prepare, produce, seconds_for, simulated, simulated_events
from streams.kafka.broker import EmbeddedBroker

SECTIONS = ("throughput", "profile", "latency", "restart", "series")


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"


BASELINES = frozenset({"raw_aiokafka", "quix_counter", "faust_take", "naive_faust"})  # bench/consumers/


def throughput_rows(
    messages: list,
    quix_python: str | None,
    workers: tuple[int, ...],
    baselines: frozenset[str] = BASELINES,
    py_spy: str | None = None,
) -> tuple[list[tuple[str, throughput.Timing]], profile.Profile | None]:
    """The consumers' timings; and with ``py_spy``, the profile of one more LeadPulse worker's catch-up."""
    total = sum(1 for message in messages if message.topic != "crm.reps")
    rows: list[tuple[str, throughput.Timing]] = []
    sampled = None
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(log_path=Path(tmp) / "tansu.log") as broker:
        prepare(broker.bootstrap, *(f"bench-leadpulse-{n}" for n in workers), "bench-profile")
        seconds = asyncio.run(produce(broker.bootstrap, messages))
        print(
            f"produced {len(messages):,} messages ({total:,} deal events) in {seconds:.1f} s "
            f"({len(messages) / seconds:,.0f} messages/s)",
            flush=True,
        )
        scratch = Path(tmp)
        consumers = [
            ("raw aiokafka, decode only (the ceiling)", "raw_aiokafka", sys.executable),
            ("Quix Streams 3, one stateful counter", "quix_counter", quix_python),
            ("Faust take(), no work", "faust_take", sys.executable),
            ("naive Faust agent, a table write per event", "naive_faust", sys.executable),
        ]
        for name, module, python in consumers:
            if module not in baselines:
                continue
            if python is None:
                print(f"{name}: skipped (no --quix-python; `python3 dev.py bench` makes one)", flush=True)
                continue
            rows.append((name, throughput.baseline(name, module, python, broker.bootstrap, scratch, total)))
            print(f"{name}: {said(rows[-1][1])}", flush=True)
        for count in workers:
            name = f"LeadPulse, whole catalog, RocksDB, {count} worker{'s' if count > 1 else ''}"
            rows.append(
                (name, throughput.leadpulse(count, broker.bootstrap, scratch, total, f"bench-leadpulse-{count}"))
            )
            print(f"{name}: {said(rows[-1][1])}", flush=True)
        if py_spy is not None:
            sampled = profile.measure(py_spy, broker.bootstrap, scratch, total, "bench-profile")
            print(f"profiled one worker's catch-up: {sampled.samples:,} samples", flush=True)
    return rows, sampled


def said(timing: throughput.Timing) -> str:
    return (
        f"all committed {timing.done:.1f} s after launch, first commit at {timing.start_up:.1f} s "
        f"({timing.first_committed:,} events); {timing.rate:,.0f} events/s, {timing.rate_after_start_up:,.0f} "
        f"after start-up; {timing.cpu:.1f} CPU s"
    )


def throughput_table(messages: list, rows: list[tuple[str, throughput.Timing]]) -> list[str]:
    """Per consumer: start-up, the whole run, events/s (over the whole run and after start-up) with
    LeadPulse (1 worker) / it, and CPU microseconds per event; then what a deal costs LeadPulse."""
    deal_messages = [message for message in messages if message.topic != "crm.reps"]
    deals = len({message.key for message in deal_messages})
    lead = next(timing for name, timing in rows if name.startswith("LeadPulse"))
    out = [
        f"\nthroughput: {len(deal_messages):,} deal events ({deals:,} deals, "
        f"{len(deal_messages) / deals:.1f} events per deal), 4 partitions; each consumer timed from its launch "
        f"until its group committed all input (polled every {throughput.POLL_SECONDS} s); start-up: launch to "
        "its first commit",
        f"{'':44} {'start-up':>8} {'all in':>7} {'events/s':>9} {'LP1 / it':>8} {'events/s':>9} {'LP1 / it':>8}"
        f" {'CPU µs per event':>17}",
        f"{'consumer':44} {'s':>8} {'s':>7} {'whole run':>9} {'':>8} {'after':>9} {'after':>8}"
        f" {'whole':>8} {'after':>8}",
    ]
    out += [
        f"{name:44} {t.start_up:8.1f} {t.done:7.1f} {t.rate:9,.0f} {lead.rate / t.rate:7.2f}x "
        f"{t.rate_after_start_up:9,.0f} {lead.rate_after_start_up / t.rate_after_start_up:7.2f}x "
        f"{t.cpu_us_per_event:8.1f} {t.cpu_us_after_start_up:8.1f}"
        for name, t in rows
    ]
    out.append(
        "(after: from the first commit on, the events it had not yet covered; LP1: LeadPulse with 1 worker; "
        "CPU: user + system of the consumer's processes)"
    )
    per_deal = lead.cpu_us_after_start_up * len(deal_messages) / deals
    out.append(
        f"LeadPulse (1 worker) per deal change: the worker counts no deal changes, only events, so bounded by "
        f"the dataset: {lead.cpu_us_after_start_up:,.1f} CPU µs per event after start-up "
        f"({1e6 / lead.rate_after_start_up:,.1f} µs of wall clock), so between that (every event its own "
        f"change) and {per_deal:,.0f} CPU µs (all {len(deal_messages) / deals:.1f} events of a deal in one "
        f"change) per deal change"
    )
    return out


def report(out: list[str], shown: int) -> int:
    """Print the table's lines not yet shown, as each section ends: a section that fails later loses
    nothing measured before it."""
    print("\n" + "\n".join(out[shown:]), flush=True)
    return len(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=21600, help="simulated history to replay")
    parser.add_argument(
        "--events", type=int, default=None, help="exactly this many deal events instead (history to match --rate)"
    )
    parser.add_argument("--rate", type=float, default=20, help="simulated events per second")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    parser.add_argument("--workers", default="1,2,4", help="LeadPulse worker counts to time")
    parser.add_argument("--latency-rates", default="2000,5000", help="steady input rates, events/s")
    parser.add_argument("--latency-seconds", type=float, default=60)
    parser.add_argument(
        "--restart-largest", type=int, default=restart.LARGEST, help="open deals of the RocksDB-only restart (0: none)"
    )
    parser.add_argument("--quix-python", default=None, help="an interpreter with quixstreams installed")
    parser.add_argument("--py-spy", default=None, help="py-spy, for the profile section")
    parser.add_argument("--no-baselines", action="store_true", help="time LeadPulse only")
    parser.add_argument(
        "--baselines", default=",".join(BASELINES), help=f"comma-separated, of {', '.join(sorted(BASELINES))}"
    )
    args = parser.parse_args()
    sections = set(args.only.split(","))
    out = [f"machine: {machine()}"]
    shown = report(out, 0)
    messages = []
    if sections & {"throughput", "profile", "latency"}:
        started = time.perf_counter()
        if args.events:
            messages = simulated_events(args.events, args.rate)
            history = f"{seconds_for(args.events, args.rate) / 3600:.1f} hours"
        else:
            messages = simulated(args.seconds, args.rate)
            history = f"{args.seconds / 3600:.1f} hours"
        print(
            f"simulated {len(messages):,} messages ({history} at {args.rate:g} events/s) in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
    if sections & {"throughput", "profile"}:
        timed = "throughput" in sections
        workers = tuple(int(n) for n in args.workers.split(",")) if timed else ()
        chosen = frozenset() if args.no_baselines or not timed else frozenset(args.baselines.split(","))
        if chosen - BASELINES:
            parser.error(f"--baselines: unknown {', '.join(sorted(chosen - BASELINES))}")
        if "profile" in sections and args.py_spy is None:
            parser.error("the profile section needs --py-spy (`python3 dev.py bench` installs one)")
        rows, sampled = throughput_rows(
            messages, args.quix_python, workers, baselines=chosen, py_spy=args.py_spy if "profile" in sections else None
        )
        if timed:
            out += throughput_table(messages, rows)
        if sampled is not None:
            out += profile.table(
                sampled,
                f"profile: one LeadPulse worker's catch-up after start-up, {sampled.samples:,} samples of its main "
                "thread (py-spy --native, 100 Hz)",
            )
        shown = report(out, shown)
    if "latency" in sections:
        for rate in (float(r) for r in args.latency_rates.split(",")):
            with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(log_path=Path(tmp) / "tansu.log") as broker:
                prepare(broker.bootstrap, "bench-latency")
                figures = latency.measure(broker.bootstrap, Path(tmp), messages, rate, args.latency_seconds)
            out.append(
                f"\nlatency at {rate:,.0f} events/s for {args.latency_seconds:.0f} s, 1 worker "
                f"({figures['probes']} probes, {figures['unseen']} not seen within a minute; the worker "
                f"committed {figures['committed']:,} of {figures['produced']:,} events)"
            )
            out.append(
                f"  produced -> visible in /metrics (the API):  p50 {figures['visible_p50']:7,.0f} ms   "
                f"p99 {figures['visible_p99']:7,.0f} ms"
            )
            out.append(
                f"  produced -> leadpulse.lead-responses:       p50 {figures['output_p50']:7,.0f} ms   "
                f"p99 {figures['output_p99']:7,.0f} ms"
            )
            shown = report(out, shown)
    if "restart" in sections:
        results, rebuild_profile = restart.measure(largest=args.restart_largest or None, py_spy=args.py_spy)
        out.append("\nrestart to ready (one worker, after a graceful stop)")
        out.append(
            f"{'store':8} {'open deals':>11} {'restart to ready':>17} {'of it: rebuild':>15} {'per deal':>9} "
            f"{'resident memory':>16} {'bytes per record':>17}"
        )
        out += [
            f"{r.store:8} {r.deals:11,} {r.restart_seconds:15.1f} s {r.rebuild_seconds:13.2f} s "
            f"{r.rebuild_us_per_deal:6.0f} µs {r.rss_bytes / 2**20:12.0f} MiB {r.record_bytes:17,.0f}"
            for r in results
        ]
        for store in restart.STORES:
            per_deal = restart.per_open_deal(results, store)
            out.append(f"{store}: {per_deal:,.0f} bytes of resident memory per open deal (between the two sizes)")
        if rebuild_profile is not None:
            out += profile.table(
                rebuild_profile,
                f"rebuild profile: the RocksDB worker's restart at {max(r.deals for r in results):,} deals, "
                f"{rebuild_profile.samples:,} samples inside Engine._rebuild (py-spy --native, 200 Hz)",
            )
        shown = report(out, shown)
    if "series" in sections:
        figures = series.measure(series.arguments([]))
        out.append(
            f"\nscrape: {figures['reps']:,} reps in {figures['teams']} teams, a month "
            f"({figures['played']:,} messages, {figures['deals']:,} deals), in-process"
        )
        out.append(
            f"  series per /metrics at the busiest hour: {figures['series']:,} (with the last two hours quiet: "
            f"{figures['series_quiet_hour']:,}); first scrape (every cell) {figures['first_ms']:,.0f} ms; "
            f"at rest {figures['rest_ms']:,.0f} ms"
        )
        for events, changed, ms in figures["loaded"]:
            out.append(f"  after {events:,} more events ({changed:,} cells changed): {ms:,.0f} ms")
    report(out, shown)


if __name__ == "__main__":
    main()
