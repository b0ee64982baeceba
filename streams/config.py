"""Configuration from ``LEADPULSE_*`` environment variables and a ``.env`` file.

Nested settings use ``__``: ``LEADPULSE_TOPICS__CALLS=crm.calls``. Complex values are JSON:
``LEADPULSE_SLA_BY_SOURCE='{"inbound_demo": 120}'``. :func:`load_settings` turns a validation
failure into a :class:`ConfigError` whose message names each bad variable.
"""

from __future__ import annotations

import re
import socket
import zoneinfo
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from schemas.events import InputTopic
from streams.fold.facts import DealTopic
from streams.fold.periods import Calendar, PeriodKind
from streams.fold.sla import SlaPolicy, policy_from

ENV_PREFIX = "LEADPULSE_"
NESTED_DELIMITER = "__"


class ConfigError(Exception):
    """A setting is invalid; the message names the environment variable."""


TopicName = Annotated[str, Field(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$")]


class TopicNames(BaseModel):
    deal_stages: TopicName = "crm.deal-stages"
    calls: TopicName = "crm.calls"
    emails: TopicName = "crm.emails"
    meetings: TopicName = "crm.meetings"
    reps: TopicName = "crm.reps"
    dead_letter: TopicName = "leadpulse.dead-letter"
    lead_responses: TopicName = "leadpulse.lead-responses"
    alerts: TopicName = "leadpulse.alerts"

    def input_name(self, topic: InputTopic) -> str:
        return str(getattr(self, topic.value))


class KafkaSecurity(BaseModel):
    """TLS and SASL for ``LEADPULSE_BROKER`` (ignored by the embedded broker)."""

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None


# SPEC §3's weighted pipeline: the probability that an open deal in each stage is won. "other" is every
# stage outside the closed set (streams.metrics.labels.stage_label).
DEFAULT_STAGE_PROBABILITIES: dict[str, float] = {
    "new": 0.05,
    "contacted": 0.10,
    "qualified": 0.20,
    "meeting": 0.30,
    "proposal": 0.50,
    "negotiation": 0.75,
    "other": 0.10,
}


class Retention(BaseModel):
    """How many past periods of each kind stay queryable, besides the current one (SPEC §2: at least
    35 days, 13 months, 5 quarters and 2 years in all). Quarters and years are sums of months, so
    their retention keeps the months they need."""

    hours: int = Field(default=72, ge=1)
    days: int = Field(default=40, ge=35)
    weeks: int = Field(default=60, ge=1)
    months: int = Field(default=14, ge=13)
    quarters: int = Field(default=4, ge=4)
    years: int = Field(default=1, ge=1)

    def by_kind(self) -> dict[PeriodKind, int]:
        return {
            PeriodKind.HOUR: self.hours,
            PeriodKind.DAY: self.days,
            PeriodKind.WEEK: self.weeks,
            PeriodKind.MONTH: self.months,
            PeriodKind.QUARTER: self.quarters,
            PeriodKind.YEAR: self.years,
        }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        env_file=".env",
        extra="ignore",
    )

    broker: str | None = Field(
        default=None, description="Kafka bootstrap servers (host:port,...); unset = embedded Tansu broker."
    )
    kafka: KafkaSecurity = KafkaSecurity()
    app_id: str = Field(default="leadpulse", min_length=1, description="Faust app id = consumer group.")
    topics: TopicNames = TopicNames()
    partitions: int = Field(default=4, ge=1, le=1024, description="Partitions of topics LeadPulse creates.")
    replication_factor: int = Field(default=1, ge=1)
    store: Literal["memory", "rocksdb"] | None = Field(
        default=None,
        description="Table store: rocksdb (persistent, under the data directory) or memory; "
        "default rocksdb with LEADPULSE_BROKER, memory with the embedded broker.",
    )
    data_dir: Path = Field(default=Path(".leadpulse"), description="Faust's data directory.")
    reporting_timezone: str = Field(default="UTC", description="IANA zone of calendar periods.")
    stage_probabilities: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_STAGE_PROBABILITIES),
        description="JSON object: stage -> probability of winning (0-1), merged over the defaults.",
    )
    fiscal_year_start_month: int = Field(
        default=1,
        ge=1,
        le=12,
        description="Month (1-12) whose first day starts the fiscal year, its quarters and years.",
    )
    sla_default_seconds: float | list[float] = Field(
        default=300, description="First-response SLA: seconds, or ascending escalation steps (JSON list)."
    )
    sla_by_source: dict[str, float | list[float]] = Field(
        default_factory=dict, description="Per-source SLA (seconds or steps), JSON."
    )
    sla_business_hours: bool = Field(default=False, description="Count SLA waits in the owner's working hours.")
    alert_lookback_seconds: float = Field(
        default=86400, gt=0, description="SLA steps and slips that happened longer ago than this are not alerted."
    )
    max_future_skew_seconds: float = Field(default=300, ge=0)
    max_rep_labels: int = Field(
        default=3000, ge=1, description="Distinct reps one worker exports; the rest as `other` (about 100 series each)."
    )
    max_team_labels: int = Field(default=300, ge=1, description="Distinct teams one worker exports; the rest `other`.")
    max_currency_labels: int = Field(default=20, ge=1, description="Distinct currencies one worker exports.")
    retention: Retention = Retention()
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    web_url: AnyHttpUrl | None = Field(
        default=None,
        description="How the other workers reach this one's web server (default from host and port).",
    )
    api_token: SecretStr | None = None
    batch_max_events: int = Field(default=10_000, ge=1, description="Events taken from one fetch at most.")
    commit_interval_seconds: float = Field(default=2.0, gt=0)
    fetch_max_wait_ms: int = Field(
        default=100, ge=0, le=30_000, description="How long a fetch may wait for records (Faust fixes 1500)."
    )
    session_timeout_seconds: float = Field(default=10.0, gt=0)
    broker_silence_seconds: float = Field(
        default=15.0, gt=0, description="Not ready (and /metrics without figures) once the broker is silent this long."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _store_needs_a_broker_that_keeps_data(self) -> Settings:
        if self.store == "rocksdb" and self.embedded_broker:
            raise ValueError(
                "LEADPULSE_STORE=rocksdb needs LEADPULSE_BROKER: the embedded broker keeps nothing across restarts, "
                "so the tables on disk would name offsets it never had (use memory)"
            )
        return self

    @field_validator("reporting_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}") from exc
        return value

    @field_validator("sla_default_seconds")
    @classmethod
    def _valid_default_steps(cls, value: float | list[float]) -> float | list[float]:
        _check_steps(value)
        return value

    @field_validator("stage_probabilities")
    @classmethod
    def _known_stages_with_probabilities(cls, given: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(given) - set(DEFAULT_STAGE_PROBABILITIES))
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}: the open stages are {sorted(DEFAULT_STAGE_PROBABILITIES)}")
        for stage, probability in given.items():
            if not 0 <= probability <= 1:
                raise ValueError(f"the probability of {stage!r} must lie between 0 and 1 (got {probability})")
        return {**DEFAULT_STAGE_PROBABILITIES, **given}

    @field_validator("sla_by_source")
    @classmethod
    def _valid_source_steps(cls, value: dict[str, float | list[float]]) -> dict[str, float | list[float]]:
        for source, steps in value.items():
            try:
                _check_steps(steps)
            except ValueError as exc:
                raise ValueError(f"source {source!r}: {exc}") from None
        return value

    def advertised_url(self) -> str:
        """The URL this worker announces to its group, for the API's routing and gathering."""
        if self.web_url is not None:
            return str(self.web_url).rstrip("/")
        host = self.web_host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()  # listening everywhere: the others know this host by name
        if ":" in host:
            host = f"[{host}]"  # an IPv6 address
        return f"http://{host}:{self.web_port}"

    def calendar(self) -> Calendar:
        """The reporting calendar: periods in the reporting timezone, the fiscal year's quarters."""
        return Calendar(self.reporting_timezone, self.fiscal_year_start_month)

    def sla_policy(self) -> SlaPolicy:
        return policy_from(self.sla_default_seconds, self.sla_by_source, self.sla_business_hours)

    def sla_seconds(self, source: str | None) -> float:
        return self.sla_policy().sla_seconds(source)

    @property
    def embedded_broker(self) -> bool:
        return not self.broker

    def table_store(self) -> Literal["memory", "rocksdb"]:
        """The store to run. A real cluster: RocksDB, so a restart reads the changelog from where
        the disk left off instead of from the beginning. The embedded broker keeps nothing across
        restarts, so a disk from an earlier run would name offsets the new broker never had: memory."""
        if self.store is not None:
            return self.store
        return "memory" if self.embedded_broker else "rocksdb"


MAX_SLA_STEPS = 10


def _check_steps(value: float | list[float]) -> None:
    steps = [value] if isinstance(value, int | float) else value
    if not steps or len(steps) > MAX_SLA_STEPS:
        raise ValueError(f"give 1 to {MAX_SLA_STEPS} SLA steps")
    if any(seconds <= 0 for seconds in steps):
        raise ValueError("SLA seconds must be > 0")
    if any(later <= earlier for earlier, later in pairwise(steps)):
        raise ValueError("SLA escalation steps must be strictly ascending")


def env_name(location: tuple[int | str, ...]) -> str:
    """The environment variable behind a validation error location."""
    return ENV_PREFIX + NESTED_DELIMITER.join(str(part).upper() for part in location if isinstance(part, str))


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings, or raise :class:`ConfigError` naming each bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = tuple(error["loc"])
            got = f" (got {error['input']!r})" if "input" in error and not isinstance(error["input"], dict) else ""
            problems.append(f"{env_name(location)}: {error['msg']}{got}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from None
    except SettingsError as exc:  # a complex value (dict, nested model) that is not valid JSON
        field = re.search(r'field "([^"]+)"', str(exc))
        name = env_name((field.group(1),)) if field else "a LEADPULSE_ variable"
        raise ConfigError(f"invalid configuration:\n  {name}: not valid JSON ({exc.__cause__})") from None


def topic_names(settings: Settings) -> dict[str, str]:
    """Deal topic (``"calls"``) -> the configured Kafka topic name, as the ``topic`` label shows it."""
    return {topic.name.lower(): str(getattr(settings.topics, topic.name.lower())) for topic in DealTopic}
