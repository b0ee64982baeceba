"""Starting a worker: broker (embedded or configured), topics, engine, Faust worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import faust

from streams.broker import EmbeddedBroker
from streams.config import Settings
from streams.engine import Engine, changelog_topics
from streams.topics import ensure_topics

log = logging.getLogger(__name__)


@contextmanager
def broker_for(settings: Settings) -> Iterator[str]:
    """The bootstrap servers: ``LEADPULSE_BROKER``, or an embedded Tansu for as long as this lasts."""
    if not settings.embedded_broker:
        yield str(settings.broker)
        return
    with EmbeddedBroker(log_path=settings.data_dir / "tansu.log") as broker:
        log.warning(
            "LEADPULSE_BROKER is unset: started an embedded Tansu broker on %s. It keeps nothing across "
            "restarts: every event and all state are gone when this process stops.",
            broker.bootstrap,
        )
        yield broker.bootstrap


def prepare(settings: Settings, bootstrap: str, loop: asyncio.AbstractEventLoop) -> Engine:
    deal_changelogs, global_changelogs = changelog_topics(settings)
    layout = loop.run_until_complete(
        ensure_topics(settings, bootstrap, deal_changelogs=deal_changelogs, global_changelogs=global_changelogs)
    )
    return Engine(settings, bootstrap, layout)


def run_worker(settings: Settings, bootstrap: str) -> None:
    """Run one Faust worker until it is stopped (SIGINT/SIGTERM)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    engine = prepare(settings, bootstrap, loop)
    log.info("metrics on http://%s:%d/metrics", settings.web_host, settings.web_port)
    worker = faust.Worker(engine.app, loop=loop, loglevel=settings.log_level.lower(), redirect_stdouts=False)
    # At WARNING and above, Faust's terminal spinner sets the root logger to DEBUG (so it can spin on
    # every record): every aiokafka debug call then builds a record, about 5% of a busy worker.
    worker.spinner = None
    worker.execute_from_commandline()
