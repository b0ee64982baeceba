"""Starting a worker: broker (embedded or configured), topics, engine, Faust worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import faust

from streams.config import Settings
from streams.gc_policy import tune_gc
from streams.kafka.broker import EmbeddedBroker
from streams.kafka.start_over import before_starting_over, start_over, times_started_over
from streams.kafka.topics import ensure_topics
from streams.worker.engine import Engine, changelog_topics

log = logging.getLogger(__name__)

EMBEDDED_WATCH_SECONDS = 1.0


@dataclass(frozen=True)
class Broker:
    bootstrap: str
    embedded: EmbeddedBroker | None = None


@contextmanager
def broker_for(settings: Settings) -> Iterator[Broker]:
    """``LEADPULSE_BROKER``, or an embedded Tansu for as long as this lasts."""
    if not settings.embedded_broker:
        yield Broker(str(settings.broker))
        return
    with EmbeddedBroker(log_path=settings.data_dir / "tansu.log") as broker:
        log.warning(
            "LEADPULSE_BROKER is unset: started an embedded Tansu broker on %s. It keeps nothing across "
            "restarts: every event and all state are gone when this process stops.",
            broker.bootstrap,
        )
        before_starting_over(broker.stop)
        yield Broker(broker.bootstrap, broker)


def prepare(settings: Settings, bootstrap: str, loop: asyncio.AbstractEventLoop) -> Engine:
    deal_changelogs, global_changelogs = changelog_topics(settings)
    layout = loop.run_until_complete(
        ensure_topics(settings, bootstrap, deal_changelogs=deal_changelogs, global_changelogs=global_changelogs)
    )
    return Engine(settings, bootstrap, layout)


def watch_the_embedded_broker(engine: Engine, broker: EmbeddedBroker) -> None:
    """An embedded broker that exits took every event and all state with it: start over with a new
    one, rather than wait for a broker that nothing will restart."""

    async def embedded_broker_alive() -> None:
        code = broker.exit_code()
        if code is not None:
            start_over(
                f"the embedded broker exited with code {code}, and it keeps nothing",
                wipe=Path(engine.app.conf.tabledir),
            )

    engine.app.timer(EMBEDDED_WATCH_SECONDS)(embedded_broker_alive)


def run_worker(settings: Settings, broker: Broker, *, quiet_libraries: tuple[str, ...] = ()) -> None:
    """Run one Faust worker until it is stopped (SIGINT/SIGTERM); ``quiet_libraries`` log warnings
    only (Faust configures logging when its worker starts: a level set before that is undone)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if times_started_over():
        log.warning("this worker has started over %d time(s) since it was launched", times_started_over())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    engine = prepare(settings, broker.bootstrap, loop)
    if broker.embedded is not None:
        watch_the_embedded_broker(engine, broker.embedded)
    log.info("metrics on http://%s:%d/metrics", settings.web_host, settings.web_port)
    # The core's build (streams/build.py): a stale or partial one runs code older than its sources.
    good = engine.build.label in {"mypyc", "python"}
    log.log(logging.INFO if good else logging.WARNING, "core: %s", engine.build.summary())
    quiet = {name: {"level": "WARNING"} for name in quiet_libraries}
    worker = faust.Worker(
        engine.app,
        loop=loop,
        loglevel=settings.log_level.lower(),
        redirect_stdouts=False,
        logging_config={"merge": True, "loggers": quiet} if quiet else None,
    )
    # At WARNING and above, Faust's terminal spinner sets the root logger to DEBUG (so it can spin on
    # every record): every aiokafka debug call then builds a record, about 5% of a busy worker.
    worker.spinner = None
    tune_gc()
    worker.execute_from_commandline()
