"""The Faust App, built once from settings: nothing else lives here."""

from __future__ import annotations

import faust
from faust.tables import TableManager

from streams.config import Settings
from streams.kafka.topics import ssl_context_of

STORE_URLS = {"memory": "memory://", "rocksdb": "leadpulse-rocksdb://"}  # streams/state/stores.py
APP_VERSION = 1  # bump with the tables' _vN when the state layout changes


def _credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    security = settings.kafka
    context = ssl_context_of(settings)
    if security.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=security.sasl_username,
            password=security.sasl_password.get_secret_value() if security.sasl_password else None,
            mechanism=security.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


class DeclaredTables(TableManager):
    """Faust's table manager without the second it sleeps before starting recovery, for tables
    registered late: every LeadPulse table is declared before the app starts
    (:func:`streams.state.tables.declare_tables`), and the second came straight off every start-up
    (``tests/test_intake.py`` pins what Faust's ``on_start`` does)."""

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


def build_app(settings: Settings, bootstrap: str, deal_partitions: int) -> faust.App:
    session = settings.session_timeout_seconds
    app = faust.App(
        settings.app_id,
        version=APP_VERSION,
        autodiscover=False,
        broker=[f"leadpulse://{server.strip()}" for server in bootstrap.split(",")],  # streams/kafka/transport.py
        broker_credentials=_credentials(settings),
        store=STORE_URLS[settings.table_store()],
        topic_partitions=deal_partitions,
        topic_replication_factor=settings.replication_factor,
        topic_disable_leader=True,
        # Standbys add nothing with the memory store and would share its single dict.
        table_standby_replicas=0,
        broker_session_timeout=session,
        broker_heartbeat_interval=max(0.5, min(3.0, session / 4)),
        broker_rebalance_timeout=max(session, 10.0),
        broker_request_timeout=max(session * 2, 30.0),
        broker_commit_interval=settings.commit_interval_seconds,
        consumer_auto_offset_reset="earliest",
        broker_max_poll_records=settings.batch_max_events,  # a fetched batch: streams/kafka/intake.py
        web_enabled=True,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        # Announced in the group's membership metadata: how the others reach this worker's API.
        canonical_url=settings.advertised_url(),
        # Faust's own pages would bypass the API token (/table serves raw table values) and
        # Faust's production index would take "/", where the live page is: none are served.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        datadir=str(settings.data_dir),
        # A changelog that ends below what a table read (a broker back empty) would crash the
        # worker; the engine checks the same and starts over from the broker (streams/kafka/start_over.py).
        recovery_consistency_check=False,
        TableManager=DeclaredTables,
    )
    app.fetch_max_wait_ms = settings.fetch_max_wait_ms  # read by streams/kafka/transport.py (Faust fixes 1500)
    return app
