"""``leadpulse demo | worker | simulate | import`` (SPEC §5)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

from streams.config import ConfigError, Settings, load_settings


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
    from streams.kafka.start_over import before_starting_over
    from streams.worker.runner import broker_for, run_worker

    settings = _settings_or_exit()
    _logging(settings)
    with broker_for(settings) as broker:
        env = {**os.environ, "LEADPULSE_BROKER": broker.bootstrap}
        command = [
            sys.executable,
            "-m",
            "streams.cli",
            "simulate",
            "--rate",
            str(args.rate),
            "--seed",
            str(args.seed),
            "--parent-pid",
            str(os.getpid()),
        ]
        simulator = subprocess.Popen(command, env=env)
        before_starting_over(lambda: (simulator.kill(), simulator.wait(10)))  # the new demo starts its own
        print(
            f"LeadPulse demo: broker {broker.bootstrap}; the live page at "
            f"http://{settings.web_host}:{settings.web_port}/, metrics at /metrics, "
            "the API as /openapi.json describes (Ctrl-C stops everything)",
            flush=True,
        )
        try:
            run_worker(settings, broker)
        finally:
            simulator.send_signal(signal.SIGTERM)
            try:
                simulator.wait(10)
            except subprocess.TimeoutExpired:
                simulator.kill()
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from streams.simulator.run import run_simulator

    settings = _settings_or_exit()
    _logging(settings)
    if settings.embedded_broker:
        print("leadpulse simulate: set LEADPULSE_BROKER to the cluster to produce into", file=sys.stderr)
        return 2
    return run_simulator(settings, rate=args.rate, seed=args.seed, duration=args.duration, parent_pid=args.parent_pid)


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
    demo.add_argument("--rate", type=float, default=20.0, help="simulated events per second")
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(run=cmd_demo)
    worker = commands.add_parser("worker", help="one worker (embedded broker when LEADPULSE_BROKER is unset)")
    worker.set_defaults(run=cmd_worker)
    simulate = commands.add_parser("simulate", help="produce a realistic, seeded CRM stream")
    simulate.add_argument("--rate", type=float, default=20.0, help="events per second")
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument("--duration", type=float, default=None, help="seconds to run (default: until stopped)")
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
