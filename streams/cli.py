"""``leadpulse demo | worker | simulate | import`` (SPEC §5)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from streams.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from streams.simulator.history import History


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"leadpulse: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def cmd_worker(args: argparse.Namespace) -> int:
    from streams.worker.runner import broker_for, run_worker

    settings = _settings_or_exit()
    _logging(settings)
    with broker_for(settings) as broker:
        run_worker(settings, broker)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Embedded broker, one worker and the simulator (a child process) together."""
    from streams.demo import run_demo

    settings = _settings_or_exit()
    _logging(settings)
    return run_demo(settings, rate=args.rate, seed=args.seed)


def cmd_simulate(args: argparse.Namespace) -> int:
    from streams.simulator.run import run_simulator

    settings = _settings_or_exit()
    _logging(settings)
    if settings.embedded_broker:
        print("leadpulse simulate: set LEADPULSE_BROKER to the cluster to produce into", file=sys.stderr)
        return 2
    return run_simulator(
        settings,
        rate=args.rate,
        seed=args.seed,
        duration=args.duration,
        history=_history(settings, args),
        parent_pid=args.parent_pid,
    )


def _history(settings: Settings, args: argparse.Namespace) -> Callable[[float], History]:
    """``--history quarter`` (the fiscal quarter so far, at a real floor's pace) or seconds (at the
    live rate); ``--history-rate`` sets the pace of either."""
    from functools import partial

    from streams.simulator.history import HISTORY_RATE, last, quarter_so_far

    if args.history == "quarter":
        return partial(quarter_so_far, settings.calendar(), rate=args.history_rate or HISTORY_RATE)
    return partial(last, float(args.history), rate=args.history_rate or args.rate)


def _history_choice(text: str) -> str:
    if text == "quarter":
        return text
    try:
        if float(text) >= 0:
            return text
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"--history is 'quarter' or a number of seconds >= 0 (got {text!r})")


def cmd_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from streams.importer.run import run_import

    settings = _settings_or_exit()
    _logging(settings)
    if settings.embedded_broker:
        print("leadpulse import: set LEADPULSE_BROKER to the cluster to import into", file=sys.stderr)
        return 2
    path = Path(args.file)
    if not path.is_file():
        print(f"leadpulse import: {path} is not a readable file", file=sys.stderr)
        return 2
    return run_import(settings, path, progress=not args.no_progress)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leadpulse", description="Real-time sales metrics from CRM events.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="embedded broker + one worker + the simulator")
    demo.add_argument("--rate", type=float, default=2.0, help="live simulated events per second")
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(run=cmd_demo)
    worker = commands.add_parser("worker", help="one worker (embedded broker when LEADPULSE_BROKER is unset)")
    worker.set_defaults(run=cmd_worker)
    simulate = commands.add_parser("simulate", help="produce a realistic, seeded CRM stream")
    simulate.add_argument("--rate", type=float, default=20.0, help="events per second")
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument("--duration", type=float, default=None, help="seconds to run (default: until stopped)")
    simulate.add_argument(
        "--history",
        type=_history_choice,
        default="quarter",
        help="what to replay before going live: 'quarter' (the fiscal quarter so far) or SECONDS",
    )
    simulate.add_argument("--history-rate", type=float, default=None, help="events per second of the history")
    simulate.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)  # set by demo
    simulate.set_defaults(run=cmd_simulate)
    backfill = commands.add_parser("import", help="backfill a JSONL export")
    backfill.add_argument("file", help='JSONL: one {"topic", "key", "value"} object a line, value the raw message')
    backfill.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    backfill.set_defaults(run=cmd_import)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
