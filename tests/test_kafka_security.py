"""TLS and SASL reach every Kafka client the worker and the tools create, as aiokafka options.

Each client is built at its real call site with the constructor replaced by a recorder, so a call
site that forgot the security options fails here, whatever the protocol."""

from __future__ import annotations

import asyncio
import ssl
from functools import partial
from pathlib import Path
from typing import Any

import certifi
import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.config import load_settings
from streams.importer import run as importer_run
from streams.kafka import topics, transport
from streams.simulator import run as simulate
from streams.simulator.history import last
from streams.worker.app import build_app

PASSWORD = "pa55-never-logged"
CASES = [
    ("SSL", None),
    ("SASL_PLAINTEXT", "PLAIN"),
    ("SASL_SSL", "PLAIN"),
    ("SASL_SSL", "SCRAM-SHA-256"),
    ("SASL_SSL", "SCRAM-SHA-512"),
]


class Recorded(Exception):
    """Raised by a recording constructor: the client was built, nothing else needs to run."""


def recorder(calls: list[dict[str, Any]]) -> Any:
    def construct(*args: object, **options: Any) -> Any:
        calls.append(options)
        raise Recorded

    return construct


def assert_secured(options: dict[str, Any], protocol: str, mechanism: str | None) -> None:
    assert options["security_protocol"] == protocol
    if protocol.endswith("SSL"):
        context = options["ssl_context"]
        assert isinstance(context, ssl.SSLContext) and context.verify_mode is ssl.CERT_REQUIRED
        assert len(context.get_ca_certs()) > 10, "the configured CA file was not loaded"
    else:
        assert options.get("ssl_context") is None
    if mechanism is None:
        assert "sasl_mechanism" not in options
    else:
        assert options["sasl_mechanism"] == mechanism
        assert options["sasl_plain_username"] == "leadpulse"
        assert options["sasl_plain_password"] == PASSWORD


@pytest.mark.parametrize(("protocol", "mechanism"), CASES)
def test_security_settings_reach_every_kafka_client(
    protocol: str, mechanism: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LEADPULSE_BROKER", "kafka-1:9093")
    monkeypatch.setenv("LEADPULSE_KAFKA__SECURITY_PROTOCOL", protocol)
    monkeypatch.setenv("LEADPULSE_KAFKA__SSL_CAFILE", certifi.where())
    if mechanism is not None:
        monkeypatch.setenv("LEADPULSE_KAFKA__SASL_MECHANISM", mechanism)
        monkeypatch.setenv("LEADPULSE_KAFKA__SASL_USERNAME", "leadpulse")
        monkeypatch.setenv("LEADPULSE_KAFKA__SASL_PASSWORD", PASSWORD)
    settings = load_settings(data_dir=tmp_path)
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump())

    # The worker: Faust's producer and consumer, and the consumer that probes high watermarks.
    app = build_app(settings, settings.broker or "", 4)
    assert_secured(dict(faust_aiokafka.credentials_to_aiokafka_auth(app.conf.broker_credentials)), protocol, mechanism)
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(transport.aiokafka, "AIOKafkaConsumer", recorder(calls))
    thread = transport.HighwaterCheckedConsumerThread.__new__(transport.HighwaterCheckedConsumerThread)
    thread.app, thread.transport = app, app.transport
    with pytest.raises(Recorded):
        thread._probe_consumer()
    # The topic administration (worker start-up), the simulator and the importer.
    monkeypatch.setattr(topics, "AIOKafkaAdminClient", recorder(calls))
    monkeypatch.setattr(simulate, "AIOKafkaProducer", recorder(calls))
    monkeypatch.setattr(importer_run, "AIOKafkaProducer", recorder(calls))
    export = tmp_path / "export.jsonl"
    export.write_text("")
    for client in (
        topics.ensure_topics(settings, "kafka-1:9093", deal_changelogs=[], global_changelogs=[]),
        simulate._produce(
            settings,
            rate=1,
            seed=1,
            duration=1,
            history=partial(last, 0, rate=1),
            parent_pid=None,
            announce=print,
        ),
        importer_run.send_file(settings, export, progress=False),
    ):
        with pytest.raises(Recorded):
            asyncio.run(client)
    assert len(calls) == 4
    for options in calls:
        assert_secured(options, protocol, mechanism)
