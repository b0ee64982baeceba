"""Naive Faust: an agent writing one changelog-backed table key per event (what LeadPulse avoids)."""

from __future__ import annotations

import sys
from pathlib import Path

import faust

from bench.consumers import DEAL_TOPICS, faust_settings, run_faust


def main() -> None:
    bootstrap, group, datadir = sys.argv[1:4]
    Path(datadir).mkdir(parents=True, exist_ok=True)  # Faust does not create its parents
    app = faust.App(group, **faust_settings(bootstrap, datadir))
    events_per_deal = app.Table("events_per_deal", default=int, partitions=4, key_type=bytes, value_type=int)
    topic = app.topic(*DEAL_TOPICS, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    @app.agent(topic)
    async def count_events(stream: faust.StreamT) -> None:
        async for event in stream.events():
            events_per_deal[event.key] += 1  # one table write (one changelog message) per event

    run_faust(app)


if __name__ == "__main__":
    main()
