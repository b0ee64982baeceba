"""Every topic LeadPulse reads or writes, and making sure they exist before Faust starts.

LeadPulse creates what is missing (Tansu does not auto-create reliably, and Faust only creates
its own internal topics) and adapts to what exists: deal topics that already exist set the
partition count for the tables, and must agree with each other (they are co-partitioned).
``crm.reps`` may have any partition count.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context

from schemas.events import DEAL_TOPICS
from streams.config import ConfigError, KafkaSecurity, Settings

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36


def client_options(settings: Settings) -> dict[str, Any]:
    """aiokafka connection options for the configured cluster (TLS and SASL included)."""
    security: KafkaSecurity = settings.kafka
    options: dict[str, Any] = {"security_protocol": security.security_protocol}
    if security.security_protocol in {"SSL", "SASL_SSL"}:
        options["ssl_context"] = create_ssl_context(
            cafile=str(security.ssl_cafile) if security.ssl_cafile else None,
            certfile=str(security.ssl_certfile) if security.ssl_certfile else None,
            keyfile=str(security.ssl_keyfile) if security.ssl_keyfile else None,
        )
    if security.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = security.sasl_mechanism
        options["sasl_plain_username"] = security.sasl_username
        options["sasl_plain_password"] = security.sasl_password.get_secret_value() if security.sasl_password else None
    return options


def ssl_context_of(settings: Settings) -> ssl.SSLContext | None:
    return client_options(settings).get("ssl_context")


@dataclass(frozen=True)
class TopicLayout:
    """Partition counts as found or created on the cluster."""

    deal_partitions: int
    rep_partitions: int


def changelog_name(app_id: str, table: str) -> str:
    """Faust's changelog topic name for a table."""
    return f"{app_id}-{table}-changelog"


async def ensure_topics(
    settings: Settings, bootstrap: str, *, deal_changelogs: list[str], global_changelogs: list[str]
) -> TopicLayout:
    """Create missing topics; check co-partitioning of what exists. Raises ConfigError."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options(settings))
    await admin.start()
    try:
        existing = await _partition_counts(admin)
        names = settings.topics
        deal_topics = [names.input_name(topic) for topic in DEAL_TOPICS]
        found = {name: existing[name] for name in deal_topics if name in existing}
        if len(set(found.values())) > 1:
            listing = ", ".join(f"{name}={count}" for name, count in sorted(found.items()))
            raise ConfigError(
                f"the deal topics must be co-partitioned (same partition count), found {listing}; "
                "repartition them or point LEADPULSE_TOPICS__* at topics that agree"
            )
        deal_partitions = next(iter(found.values()), settings.partitions)
        if found and deal_partitions != settings.partitions:
            log.warning(
                "deal topics exist with %d partitions; using that instead of LEADPULSE_PARTITIONS=%d",
                deal_partitions,
                settings.partitions,
            )
        for changelog in deal_changelogs:
            if changelog in existing and existing[changelog] != deal_partitions:
                raise ConfigError(
                    f"changelog {changelog} has {existing[changelog]} partitions but the deal topics have "
                    f"{deal_partitions}: its state belongs to another layout. Use a new LEADPULSE_APP_ID "
                    "(state is rebuilt from the input topics) or delete the changelog topics."
                )
        wanted = {name: (deal_partitions, False) for name in deal_topics}
        wanted |= {name: (deal_partitions, True) for name in deal_changelogs}
        wanted |= {name: (1, True) for name in global_changelogs}
        wanted |= {
            names.reps: (settings.partitions, True),
            names.dead_letter: (settings.partitions, False),
            names.lead_responses: (settings.partitions, False),
            names.alerts: (settings.partitions, False),
        }
        missing = [
            NewTopic(
                name=name,
                num_partitions=partitions,
                replication_factor=settings.replication_factor,
                topic_configs={"cleanup.policy": "compact"} if compacted else {},
            )
            for name, (partitions, compacted) in wanted.items()
            if name not in existing
        ]
        if missing:
            await _create(admin, missing)
        counts = await _wait_for_topics(admin, list(wanted))
        return TopicLayout(deal_partitions=deal_partitions, rep_partitions=counts[names.reps])
    finally:
        await admin.close()


async def _partition_counts(admin: AIOKafkaAdminClient) -> dict[str, int]:
    names = await admin.list_topics()
    if not names:
        return {}
    described = await admin.describe_topics(list(names))
    return {topic["topic"]: len(topic["partitions"]) for topic in described if not topic.get("error_code")}


async def _create(admin: AIOKafkaAdminClient, topics: list[NewTopic]) -> None:
    try:
        response = await admin.create_topics(topics)
    except KafkaError as exc:
        raise ConfigError(f"could not create topics {[t.name for t in topics]}: {exc}") from exc
    for name, code, *rest in getattr(response, "topic_errors", getattr(response, "topics", [])):
        if code and code != TOPIC_ALREADY_EXISTS:
            raise ConfigError(f"could not create topic {name}: error {code} {rest[0] if rest else ''}".strip())
    log.info("created topics: %s", ", ".join(topic.name for topic in topics))


async def _wait_for_topics(admin: AIOKafkaAdminClient, names: list[str], timeout: float = 30.0) -> dict[str, int]:
    """Partition counts once every topic is visible in the metadata."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        counts = await _partition_counts(admin)
        if all(name in counts for name in names):
            return counts
        if asyncio.get_running_loop().time() > deadline:
            absent = sorted(set(names) - set(counts))
            raise ConfigError(f"topics did not appear in the cluster metadata: {absent}")
        await asyncio.sleep(0.2)


async def committed_offsets(
    bootstrap: str, group: str, topics: Iterable[str], **options: Any
) -> dict[tuple[str, int], int]:
    """A consumer group's committed offsets on the topics' partitions (those with one), read
    without joining the group.

    The partitions are named: Tansu 0.6 answers OffsetFetch's "all of the group's partitions"
    form with a response aiokafka cannot decode. Topics are found in the full metadata, since
    naming them in a metadata request could make Tansu create them.
    """
    wanted = set(topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **options)
    await admin.start()
    try:
        partitions = [
            TopicPartition(topic["topic"], partition["partition"])
            for topic in await admin.describe_topics()
            if topic["topic"] in wanted and not topic["error_code"]
            for partition in topic["partitions"]
        ]
        if not partitions:
            return {}
        offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
    finally:
        await admin.close()
    return {(tp.topic, tp.partition): metadata.offset for tp, metadata in offsets.items() if metadata.offset >= 0}


async def committed_total(bootstrap: str, group: str, topics: Iterable[str], **options: Any) -> int:
    """The sum of a group's committed offsets over the topics' partitions: how far it has durably got."""
    return sum((await committed_offsets(bootstrap, group, topics, **options)).values())
