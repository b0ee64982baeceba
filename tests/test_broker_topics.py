"""The worker adapts to topics that already exist: co-partitioned deal topics set the layout."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.config import ConfigError, load_settings
from streams.kafka.broker import EmbeddedBroker
from streams.kafka.topics import ensure_topics
from streams.state.tables import DEALS, REP_PROFILES
from streams.worker.engine import changelog_topics
from tests.dataset import build
from tests.harness import WorkerProcess, produce, select, wait_until

pytestmark = pytest.mark.integration


async def create(bootstrap: str, partitions: dict[str, int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, count, 1) for name, count in partitions.items()])
    finally:
        await admin.close()


def test_existing_topics_with_other_partition_counts(broker: EmbeddedBroker, tmp_path: Path) -> None:
    asyncio.run(
        create(
            broker.bootstrap, {"crm.deal-stages": 2, "crm.calls": 2, "crm.emails": 2, "crm.meetings": 2, "crm.reps": 3}
        )
    )
    data = build(time.time(), random_deals=10)
    worker = WorkerProcess(broker.bootstrap, "existing", tmp_path / "worker").start()
    try:
        sent = asyncio.run(produce(broker.bootstrap, data.messages))
        wait_until(lambda: worker.has_processed(sent), 60, "processing")
        samples = worker.scrape()
    finally:
        worker.stop()
    keys = select(samples, "leadpulse_table_keys")
    assert keys[frozenset({("table", DEALS)})] == len({e["deal_id"] for items in data.events.values() for e in items})
    assert keys[frozenset({("table", REP_PROFILES)})] == len(data.profiles)
    rep_messages = sum(1 for topic, *_ in data.messages if topic == "crm.reps")
    assert select(samples, "leadpulse_events_processed_total")[frozenset({("topic", "crm.reps")})] == rep_messages


def test_deal_topics_that_disagree_stop_start_up_with_a_message(broker: EmbeddedBroker) -> None:
    asyncio.run(create(broker.bootstrap, {"crm.deal-stages": 2, "crm.calls": 3}))
    settings = load_settings(broker=broker.bootstrap)
    deal_changelogs, global_changelogs = changelog_topics(settings)
    with pytest.raises(ConfigError, match=r"co-partitioned.*crm\.calls=3.*crm\.deal-stages=2"):
        asyncio.run(
            ensure_topics(
                settings, broker.bootstrap, deal_changelogs=deal_changelogs, global_changelogs=global_changelogs
            )
        )
