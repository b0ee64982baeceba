"""Wires one worker together: app, tables, processor, aggregates, exporter, routes.

The aggregates (:mod:`streams.state.rollups`) are rebuilt from the deal table whenever a rebalance
completes (tables recovered, streams not yet resumed), for exactly the partitions this worker
then actively owns. Until that rebuild is done the worker reports not ready and exports only
its health metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from schemas.outputs import DeadLetterRecord
from streams.api.cluster import Gatherer
from streams.api.local import LocalView
from streams.api.routes import register_routes
from streams.api.service import Api
from streams.build import current as core_build
from streams.config import Settings, topic_names
from streams.exporter.collector import LeadPulseCollector, Ownership
from streams.fold.contributions import DealView, FoldContext
from streams.fold.deals import DealState
from streams.gc_policy import collections_paused
from streams.ingest.deadletter import KEY_KEPT_BYTES
from streams.ingest.processor import BatchProcessor
from streams.kafka.batches import Outbox
from streams.kafka.broker_loss import BrokerLossCheck
from streams.kafka.intake import attach_intake, exit_without_committing
from streams.kafka.topics import TopicLayout, changelog_name
from streams.metrics.labels import SourceLabels
from streams.outputs.dead_letters import DeadLetterSender
from streams.outputs.emitter import Outputs, Record
from streams.state.codec import deal_partition, decode_deal
from streams.state.profile_sync import ProfileSync
from streams.state.profiles import RepDirectory
from streams.state.rollups import Rollups
from streams.state.tables import Tables, declare_tables
from streams.worker.app import build_app

log = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 60.0
TICK_SECONDS = 0.5
SCRAPE_SYNC_WORK = 200_000  # a scrape takes in a few profile changes at most (see ProfileSync)


def leadpulse_version() -> str:
    try:
        return version("leadpulse")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def changelog_topics(settings: Settings) -> tuple[list[str], list[str]]:
    """Changelog topic names of the deal-partitioned and of the global tables."""
    return (
        [changelog_name(settings.app_id, name) for name in Tables.deal_table_names()],
        [changelog_name(settings.app_id, name) for name in Tables.global_table_names()],
    )


class Engine:
    def __init__(
        self, settings: Settings, bootstrap: str, layout: TopicLayout, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.build = core_build()  # mypyc or python: logged at start, a label of leadpulse_build_info
        self.app = build_app(settings, bootstrap, layout.deal_partitions)
        self.tables = declare_tables(self.app, layout.deal_partitions)
        self.directory = RepDirectory(self.tables.rep_profiles)
        self.ctx = FoldContext(
            settings.calendar(),
            self.directory,
            settings.sla_policy(),
        )
        self.rollups = Rollups(self.ctx, settings.retention.by_kind())
        self.outputs = Outputs(
            self.ctx,
            alerts_topic=settings.topics.alerts,
            responses_topic=settings.topics.lead_responses,
            lookback_seconds=settings.alert_lookback_seconds,
            send=self._send_records,
            resized=lambda partition, old, new: self.rollups.resized(partition, old, new),
        )
        self.outbox = Outbox(lambda: self.app.producer._ensure_producer())
        self.clock = clock
        self.profile_sync = ProfileSync(
            self.directory,
            self.rollups,
            self.tables.deals.data,
            on_deals_changed=self._reschedule,
        )
        self.dead_letters = DeadLetterSender(
            self._produce_dead_letter, topic=settings.topics.dead_letter, stopping=lambda: self.app.should_stop
        )
        self.processor = BatchProcessor(
            settings,
            deals=self.tables.deals,
            intake=self.tables.intake,
            rep_profiles=self.tables.rep_profiles,
            rep_intake=self.tables.rep_intake,
            rollups=self.rollups,
            publish_dead_letter=self._publish_dead_letter,
            clock=clock,
            before_deal_batch=self.profile_sync,
            outputs=self.outputs,
        )
        # Every input topic, a fetched batch at a time; durable once per commit window.
        attach_intake(self.app, self.processor.topic_of, self.processor, flush_every=settings.commit_interval_seconds)
        self.collector = LeadPulseCollector(
            settings,
            rollups=self.rollups,
            directory=self.directory,
            intake=self.tables.intake,
            rep_intake=self.tables.rep_intake,
            ownership=self.ownership,
            version=leadpulse_version(),
            build=self.build.label,
            clock=clock,
            before_read=self._sync_profiles_if_idle,
            dead_letters_waiting=lambda: self.dead_letters.waiting,
        )
        token = settings.api_token.get_secret_value() if settings.api_token else None
        self.gatherer = Gatherer(self._members, settings.advertised_url(), layout.deal_partitions, token)
        self.api = Api(
            LocalView(
                rollups=self.rollups,
                directory=self.directory,
                deals=self.tables.deals.data,
                ctx=self.ctx,
                source_labels=SourceLabels(settings.sla_by_source),
                topic_names=topic_names(settings),
                owned=self._owned_deal_partitions,
                clock=clock,
                before_read=self._sync_profiles_if_idle,
                stage_probabilities=settings.stage_probabilities,
            ),
            self.gatherer,
        )
        register_routes(
            self.app.web.web_app,
            self.api,
            self.collector.exposition,
            self.not_ready_because,
            token=token,
            version=leadpulse_version(),
        )
        self._ready = False
        self._silence_said = False
        self._check_owed = False  # the broker was silent: check what it holds before being ready again
        self._checking: asyncio.Future[None] | None = None  # after a silence: does the broker hold our input?
        self.app.on_partitions_revoked.connect(self._on_partitions_revoked)
        self.app.on_before_shutdown.connect(self._close_peer_connections)
        self.app.on_rebalance_complete.connect(self._on_rebalance_complete)
        self.broker_loss = BrokerLossCheck(self.app, self.processor, self.tables)
        # Read by streams/kafka/transport.py: start over before reading input again; commit only while ready.
        self.app.before_reading_again = self.broker_loss.before_reading_again
        self.app.commits_held = self.not_ready_because
        self.app.timer(PRUNE_INTERVAL_SECONDS)(self._prune_expired_periods)
        self.app.timer(TICK_SECONDS)(self._tick)

    async def _close_peer_connections(self, sender: object, *args: object, **kwargs: object) -> None:
        await self.gatherer.close()

    def _members(self) -> dict[str, list[int]]:
        """The group's workers by URL, with the deal partitions each owns (Faust's assignment)."""
        changelog = self.tables.deals.changelog_topic.get_topic_name()
        return {
            str(url): list(topics.get(changelog, []))
            for url, topics in self.app.router.table_metadata(self.tables.deals.name).items()
        }

    def _owned_deal_partitions(self) -> frozenset[int] | None:
        if not self.is_ready():
            return None
        return self._active(self.settings.topics.deal_stages)

    def _reschedule(self, moved: list[tuple[int, DealState]]) -> None:
        """Deals whose profiles changed: due now only if that changed what they owe."""
        now = self.clock()
        for partition, state in moved:
            self.outputs.reschedule(partition, state, now)

    def _sync_profiles_if_idle(self) -> None:
        """Before a scrape: take in profile changes, unless a batch holds the deal records (it
        took them in when it started, and moving aggregates under it would race its writes)."""
        if not self.processor.lock.locked():
            self.profile_sync(work=SCRAPE_SYNC_WORK)

    async def _tick(self) -> None:
        """Take in profile changes and publish the alerts that came due, with no input needed.

        Shielded: a graceful stop lets a started emission record what it published, so a
        restart does not repeat it."""
        self._watch_the_broker()
        if self.is_ready():
            await asyncio.shield(self._emit_due())

    def _watch_the_broker(self) -> None:
        """Say when the broker falls silent; when it answers again, say so and check what it holds."""
        silence = self._silence()
        if silence is not None:
            if not self._silence_said:
                self._silence_said = True
                log.warning(
                    "the broker has not answered for %.0f s: not ready, and /metrics holds no figures until it"
                    " does (the consumer keeps retrying)",
                    silence,
                )
        elif self._check_owed and (self._checking is None or self._checking.done()):
            log.warning("the broker answers again: checking that it still holds what this worker counted")
            self._check_owed = self._silence_said = False
            self._checking = asyncio.ensure_future(self.broker_loss.after_silence())
            self._checking.add_done_callback(self._checked)

    def _silence(self) -> float | None:
        """:meth:`broker_silent_for`, noting that a check is owed once the broker answers again (by
        whoever saw the silence first: a readiness probe may see it before the output timer)."""
        silence = self.broker_silent_for()
        if silence is not None:
            self._check_owed = True
        return silence

    def _checked(self, check: asyncio.Future[None]) -> None:
        if not check.cancelled() and check.exception() is not None:
            log.warning("could not check what the broker holds (%s); a rebalance checks again", check.exception())

    async def _emit_due(self) -> None:
        async with self.processor.lock:
            self.profile_sync()
            owned = set(self.rollups.partitions())
            deliveries = await self.outputs.emit_due(self.tables.deals, owned, self.clock())
            self.processor.defer(deliveries)
        if deliveries:  # record them sent now, not at the window's end: a crash re-sends less
            try:
                await self.processor.flush()
            except Exception:
                exit_without_committing("flushing the output timer's alerts with")

    async def _send_records(self, records: list[Record]) -> list[Awaitable[object]]:
        """Queue the records in order (:class:`streams.kafka.batches.Outbox`); their acknowledgement, to await."""
        return [self.outbox.send(records)] if records else []

    async def _prune_expired_periods(self) -> None:
        dropped = self.rollups.prune(time.time())
        if dropped:
            log.info("dropped the aggregates of %d periods past their retention", dropped)

    def _publish_dead_letter(self, record: DeadLetterRecord, key: bytes | None) -> Any:
        """Sent at once, straight to the producer, and awaited by the next flush. Not Faust's
        ``send_soon``: its buffer service crashes the worker on a send error and leaves the delivery
        pending, so a stop then waits for it forever."""
        return asyncio.ensure_future(self._send_dead_letter(record, key))

    async def _send_dead_letter(self, record: DeadLetterRecord, key: bytes | None) -> object:
        key = None if key is None else key[:KEY_KEPT_BYTES]  # the record must fit a producer request
        return await self.dead_letters.send(key, record.model_dump_json().encode())

    async def _produce_dead_letter(self, key: bytes | None, value: bytes) -> object:
        delivery = await self.app.producer.send(self.settings.topics.dead_letter, key, value, None, None, None)
        return await delivery

    def _active(self, topic: str) -> frozenset[int]:
        return frozenset(tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic)

    def ownership(self) -> Ownership:
        if not self.is_ready():
            return Ownership(ready=False)
        return Ownership(
            ready=True,
            deal_partitions=self._active(self.settings.topics.deal_stages),
            rep_partitions=self._active(self.settings.topics.reps),
        )

    def not_ready_because(self) -> str | None:
        """Why the worker is not ready, or None. Not ready, it exports only its health metrics:
        during recovery and rebalances, and while the broker is silent (the figures would be
        stale, however fresh they looked). Nor does it commit input offsets (see
        :meth:`streams.kafka.transport.Consumer._commit`): they may belong to a log the broker lost."""
        if not self._ready or self.app.rebalancing:
            return "tables are recovering"
        silence = self._silence()
        if silence is not None:
            return f"the broker has not answered for {silence:.0f} s"
        if self._check_owed or (self._checking is not None and not self._checking.done()):
            return "the broker answers again: checking that it still holds what this worker counted"
        return None

    def is_ready(self) -> bool:
        return self.not_ready_because() is None

    def broker_silent_for(self) -> float | None:
        """Seconds since the broker last answered a fetch (see streams.kafka.transport.Consumer), when
        that is longer than ``LEADPULSE_BROKER_SILENCE_SECONDS``; else None."""
        measure = getattr(self.app.consumer, "broker_silence_seconds", None)
        silence = None if measure is None else measure(time.time() * 1000)
        return silence if silence is not None and silence > self.settings.broker_silence_seconds else None

    async def _on_partitions_revoked(self, sender: object, *args: object, **kwargs: object) -> None:
        self._ready = False  # no new emission starts
        async with self.processor.lock:  # one under way records its marks before the partitions move
            pass

    async def _on_rebalance_complete(self, sender: object, *args: object, **kwargs: object) -> None:
        await self.broker_loss.after_recovery()
        async with self.processor.lock:
            self._rebuild()

    def _rebuild(self) -> None:
        started = time.monotonic()
        self.directory.sync()  # every owned partition is rebuilt below, under the current profiles
        owned = self._active(self.settings.topics.deal_stages)
        for partition in self.rollups.partitions():
            if partition not in owned:
                self.rollups.drop(partition)
        for partition in owned:
            self.rollups.reset(partition)
        self.outputs.schedule.keep_partitions(set(owned))
        now, deals = self.clock(), 0
        with collections_paused():  # as a batch: each deal is freed by its reference counts
            for record in self.tables.deals.stored_values():  # one deal at a time: none is kept
                partition = deal_partition(record)
                if partition in owned:
                    state = decode_deal(record)[1]
                    view = DealView(state)
                    self.rollups.add_deal(partition, state, len(record), view)
                    self.outputs.reschedule(partition, state, now, view)
                    deals += 1
            self.rollups.settle()
        self.rollups.prune(time.time())
        self._ready = True
        log.info(
            "aggregates and alert schedule rebuilt for partitions %s from %d deals in %.2fs",
            sorted(owned),
            deals,
            time.monotonic() - started,
        )
