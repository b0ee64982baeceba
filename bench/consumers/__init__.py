"""The baseline consumers the benchmark runs next to LeadPulse, each its own process:

    python -m bench.consumers.NAME BOOTSTRAP GROUP DATADIR

Each reads the four deal topics from the start in consumer group GROUP and commits about every
second (``COMMIT_SECONDS``, LeadPulse's window in the benchmark too) until SIGTERM. The
benchmark times them all alike, from the group's committed offsets (``streams.kafka.topics.committed_total``).
``quix_counter`` runs in the benchmark's own virtualenv (Quix Streams is not a LeadPulse dependency).
"""

from __future__ import annotations

from typing import Any

DEAL_TOPICS = ("crm.deal-stages", "crm.calls", "crm.emails", "crm.meetings")
COMMIT_SECONDS = 1.0
BATCH = 10_000  # records per fetch or take(): LeadPulse's LEADPULSE_BATCH_MAX_EVENTS default


def faust_settings(bootstrap: str, datadir: str) -> dict[str, Any]:
    """What a plain Faust app needs on Tansu (first joins wait half the session timeout)."""
    return {
        "broker": f"kafka://{bootstrap}",
        "store": "memory://",
        "topic_partitions": 4,
        "topic_disable_leader": True,
        "table_standby_replicas": 0,
        "broker_session_timeout": 6,
        "broker_heartbeat_interval": 1,
        "broker_commit_interval": COMMIT_SECONDS,
        "broker_max_poll_records": BATCH,
        "web_enabled": False,
        "autodiscover": False,
        "datadir": datadir,
    }


def run_faust(app: Any) -> None:
    import faust

    worker = faust.Worker(app, loglevel="warning", redirect_stdouts=False)
    worker.spinner = None  # at WARNING it sets the root logger to DEBUG (streams/worker/runner.py)
    worker.execute_from_commandline()
