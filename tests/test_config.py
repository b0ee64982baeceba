"""Configuration errors name the environment variable."""

from __future__ import annotations

import socket

import pytest

from streams.config import ConfigError, load_settings


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LEADPULSE_WEB_PORT", "not-a-port"),
        ("LEADPULSE_WEB_PORT", "70000"),
        ("LEADPULSE_REPORTING_TIMEZONE", "Mars/Olympus"),
        ("LEADPULSE_SLA_DEFAULT_SECONDS", "0"),
        ("LEADPULSE_SLA_BY_SOURCE", '{"referral": -5}'),
        ("LEADPULSE_SLA_BY_SOURCE", "not json"),
        ("LEADPULSE_SLA_DEFAULT_SECONDS", "[300, 120]"),  # escalation steps must ascend
        ("LEADPULSE_SLA_DEFAULT_SECONDS", "[]"),
        ("LEADPULSE_SLA_BY_SOURCE", '{"referral": [60, 60]}'),
        ("LEADPULSE_SLA_BUSINESS_HOURS", "sometimes"),
        ("LEADPULSE_ALERT_LOOKBACK_SECONDS", "-1"),
        ("LEADPULSE_PARTITIONS", "0"),
        ("LEADPULSE_TOPICS__CALLS", "has spaces"),
        ("LEADPULSE_RETENTION__DAYS", "7"),
        ("LEADPULSE_RETENTION__QUARTERS", "2"),  # five quarters in all at least
        ("LEADPULSE_FISCAL_YEAR_START_MONTH", "13"),
        ("LEADPULSE_STAGE_PROBABILITIES", '{"proposal": 1.5}'),
        ("LEADPULSE_STAGE_PROBABILITIES", '{"won": 1}'),  # closed stages have no probability
        ("LEADPULSE_KAFKA__SECURITY_PROTOCOL", "CARRIER_PIGEON"),
    ],
)
def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert variable in str(error.value)


def test_defaults_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADPULSE_SLA_BY_SOURCE", '{"inbound_demo": 120}')
    monkeypatch.setenv("LEADPULSE_TOPICS__CALLS", "acme.calls")
    settings = load_settings()
    assert settings.embedded_broker and settings.web_port == 6066 and settings.reporting_timezone == "UTC"
    assert settings.sla_seconds("inbound_demo") == 120 and settings.sla_seconds(None) == 300
    assert settings.topics.calls == "acme.calls"


def test_sla_escalation_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADPULSE_SLA_DEFAULT_SECONDS", "[300, 900, 3600]")
    monkeypatch.setenv("LEADPULSE_SLA_BY_SOURCE", '{"inbound_demo": [120, 600], "referral": 60}')
    monkeypatch.setenv("LEADPULSE_SLA_BUSINESS_HOURS", "true")
    policy = load_settings().sla_policy()
    assert policy.steps(None) == (300, 900, 3600) and policy.steps("inbound_demo") == (120, 600)
    assert policy.steps("referral") == (60,) and policy.sla_seconds("inbound_demo") == 120
    assert policy.business_hours


def test_the_advertised_url_names_a_reachable_host(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().advertised_url() == "http://127.0.0.1:6066"
    listening_everywhere = load_settings(web_host="0.0.0.0", web_port=7000).advertised_url()
    assert listening_everywhere == f"http://{socket.gethostname()}:7000"
    assert load_settings(web_host="::1").advertised_url() == "http://[::1]:6066"
    monkeypatch.setenv("LEADPULSE_WEB_URL", "http://worker-9:6066/")
    assert load_settings().advertised_url() == "http://worker-9:6066"
    monkeypatch.setenv("LEADPULSE_WEB_URL", "worker-9")
    with pytest.raises(ConfigError, match="LEADPULSE_WEB_URL"):
        load_settings()


def test_the_store_is_rocksdb_on_a_real_cluster_and_memory_on_the_embedded_broker() -> None:
    assert load_settings().table_store() == "memory"  # no LEADPULSE_BROKER: the embedded broker
    assert load_settings(broker="kafka:9092").table_store() == "rocksdb"
    assert load_settings(broker="kafka:9092", store="memory").table_store() == "memory"
    with pytest.raises(ConfigError, match="LEADPULSE_STORE"):
        load_settings(store="redis")
    with pytest.raises(ConfigError, match="LEADPULSE_STORE=rocksdb needs LEADPULSE_BROKER"):
        load_settings(store="rocksdb")  # the embedded broker keeps nothing
