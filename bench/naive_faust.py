"""The baseline: a plain Faust agent writing one table key per event (the pattern LeadPulse avoids).

Run by bench/run.py as its own process: ``python -m bench.naive_faust BOOTSTRAP PORT``.
It counts events per deal in a changelog-backed table and serves the total at ``/count``.
"""

from __future__ import annotations

import sys

import faust

DEAL_TOPICS = ("crm.deal-stages", "crm.calls", "crm.emails", "crm.meetings")


def main() -> None:
    bootstrap, port = sys.argv[1], int(sys.argv[2])
    app = faust.App(
        "bench-naive",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        topic_partitions=4,
        topic_disable_leader=True,
        table_standby_replicas=0,
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        web_port=port,
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        autodiscover=False,
        datadir="/tmp/bench-naive",
    )
    events_per_deal = app.Table("events_per_deal", default=int, partitions=4, key_type=bytes, value_type=int)
    processed = {"count": 0}
    topic = app.topic(*DEAL_TOPICS, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    @app.agent(topic)
    async def count_events(stream: faust.StreamT) -> None:
        async for event in stream.events():
            events_per_deal[event.key] += 1  # one table write (one changelog message) per event
            processed["count"] += 1

    @app.page("/count")
    async def count(self: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return self.json(processed)

    worker = faust.Worker(app, loglevel="warning", redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
