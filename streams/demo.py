"""``leadpulse demo``: the embedded broker, one worker and the simulator together, with a console
that says what is happening and where to look.

The simulator (a child process) first replays the fiscal quarter so far and prints
:data:`~streams.simulator.run.HISTORY_SENT` with the number of messages; a thread here follows the
worker's ``leadpulse_events_processed_total`` until it has folded them all, then prints the page's
address: from then on every panel, rule and page cell has data. It keeps printing a line a minute
on the live floor. Faust's own INFO lines (its recovery tables among them) are DEBUG's here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime

from prometheus_client.parser import text_string_to_metric_families

from streams.config import Settings
from streams.simulator.run import parse_history_sent

PROGRESS_EVERY_SECONDS = 5
LIVE_SUMMARY_EVERY_SECONDS = 60
# Faust, mode and aiokafka log every service start, subscription and recovery table at INFO: in the
# demo's console that buries what matters, so there they log warnings only unless
# LEADPULSE_LOG_LEVEL=DEBUG (LeadPulse's own lines stay at INFO).
NOISY_LIBRARIES = ("faust", "mode", "aiokafka")


def local_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.web_host in ("0.0.0.0", "::", "") else settings.web_host
    return f"http://{'[' + host + ']' if ':' in host else host}:{settings.web_port}"


def scrape_totals(url: str, token: str | None, names: tuple[str, ...]) -> dict[str, float] | None:
    """The sums of some families in the worker's /metrics; None while it does not answer."""
    request = urllib.request.Request(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return None
    totals = dict.fromkeys(names, 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return totals


class Console:
    """Follows the simulator's stdout and the worker's /metrics; prints what the demo is doing."""

    def __init__(self, settings: Settings, *, rate: float, say: Callable[[str], None] | None = None) -> None:
        self.url = local_url(settings)
        self.token = settings.api_token.get_secret_value() if settings.api_token else None
        self.rate = rate
        self.say = say or (lambda line: print(line, flush=True))
        self.began = time.monotonic()

    def follow(self, simulator_stdout: object) -> None:
        for line in simulator_stdout:  # type: ignore[attr-defined]
            sent = parse_history_sent(line.strip())
            if sent is None:
                self.say(line.rstrip())
                continue
            self._until_folded(*sent)
            self._live()

    def _processed(self) -> float | None:
        totals = scrape_totals(self.url, self.token, ("leadpulse_events_processed_total",))
        return None if totals is None else totals["leadpulse_events_processed_total"]

    def _until_folded(self, messages: int, start: datetime) -> None:
        self.say(
            f"LeadPulse demo: the simulator has replayed {messages:,} messages, the fiscal quarter so far"
            f" (from {start:%Y-%m-%d %H:%M} UTC); the worker is folding them"
        )
        last_said = time.monotonic()
        while (processed := self._processed() or 0) < messages:
            if time.monotonic() - last_said >= PROGRESS_EVERY_SECONDS:
                self.say(f"LeadPulse demo: folded {processed:,.0f} of {messages:,} messages")
                last_said = time.monotonic()
            time.sleep(0.5)
        self.say(
            "\n".join(
                (
                    f"LeadPulse demo: ready in {time.monotonic() - self.began:.0f} s, the quarter so far folded;"
                    f" the floor is live at {self.rate:g} events/s.",
                    f"  live page   {self.url}/",
                    f"  metrics     {self.url}/metrics  (deploy/ has the Prometheus rules and the Grafana board)",
                    f"  API         {self.url}/openapi.json, e.g. {self.url}/teams/emea/metrics?period=quarter",
                    "  Ctrl-C stops everything.",
                )
            )
        )

    def _live(self) -> None:
        names = (
            "leadpulse_events_processed_total",
            "leadpulse_leads_awaiting_response",
            "leadpulse_leads_sla_breached",
        )
        before = scrape_totals(self.url, self.token, names)
        while True:
            time.sleep(LIVE_SUMMARY_EVERY_SECONDS)
            now = scrape_totals(self.url, self.token, names)
            if now is None or before is None:
                before = now
                continue
            self.say(
                f"LeadPulse demo: {now[names[0]] - before[names[0]]:,.0f} events in the last minute;"
                f" {now[names[1]]:,.0f} leads waiting for a first response, {now[names[2]]:,.0f} past their SLA"
            )
            before = now


def run_demo(settings: Settings, *, rate: float, seed: int) -> int:
    from streams.kafka.start_over import before_starting_over
    from streams.worker.runner import broker_for, run_worker

    with broker_for(settings) as broker:
        print(f"LeadPulse demo: an embedded Kafka-protocol broker (Tansu) at {broker.bootstrap}", flush=True)
        env = {**os.environ, "LEADPULSE_BROKER": broker.bootstrap}
        command = [sys.executable, "-m", "streams.cli", "simulate", "--rate", str(rate), "--seed", str(seed)]
        command += ["--history", "quarter", "--parent-pid", str(os.getpid())]
        simulator = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        console = Console(settings, rate=rate)
        threading.Thread(target=console.follow, args=(simulator.stdout,), daemon=True, name="demo-console").start()
        before_starting_over(lambda: (simulator.kill(), simulator.wait(10)))  # the new demo starts its own
        try:
            run_worker(settings, broker, quiet_libraries=NOISY_LIBRARIES if settings.log_level != "DEBUG" else ())
        finally:
            simulator.send_signal(signal.SIGTERM)
            try:
                simulator.wait(10)
            except subprocess.TimeoutExpired:
                simulator.kill()
    return 0
