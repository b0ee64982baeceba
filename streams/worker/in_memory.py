"""A worker's processing wired over dict stores, with no Kafka: for the benchmarks and tests that fold
histories in-process (``bench/fold.py``, ``bench/series.py``, ``tests/fold_both.py``). The same
processor, aggregates, profile sync and output planner as :class:`streams.worker.engine.Engine`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from schemas.outputs import DeadLetterRecord
from streams.config import Settings
from streams.fold.contributions import FoldContext
from streams.fold.periods import Calendar
from streams.ingest.processor import BatchProcessor
from streams.outputs.emitter import Outputs, Record
from streams.state.keystore import DictKeyStore
from streams.state.profile_sync import ProfileSync
from streams.state.profiles import RepDirectory
from streams.state.rollups import Rollups

SendRecords = Callable[[list[Record]], Awaitable[list[Awaitable[object]]]]


async def _drop(_record: DeadLetterRecord, _key: bytes | None) -> None:
    return None


@dataclass
class InMemoryWorker:
    deals: DictKeyStore
    intake: DictKeyStore
    rep_profiles: DictKeyStore
    rep_intake: DictKeyStore
    directory: RepDirectory
    rollups: Rollups
    sync: ProfileSync
    outputs: Outputs | None  # None: no outputs planned
    processor: BatchProcessor


def in_memory_worker(
    settings: Settings,
    *,
    clock: Callable[[], float],
    calendar: Calendar | None = None,
    send_records: SendRecords | None = None,
    publish_dead_letter: Callable[[DeadLetterRecord, bytes | None], Awaitable[Any]] = _drop,
) -> InMemoryWorker:
    """Dict stores, the settings' calendar (or ``calendar``), and outputs planned only when
    ``send_records`` takes them."""
    deals, intake, rep_profiles, rep_intake = DictKeyStore(), DictKeyStore(), DictKeyStore(), DictKeyStore()
    directory = RepDirectory(rep_profiles)
    ctx = FoldContext(calendar or settings.calendar(), directory, settings.sla_policy())
    rollups = Rollups(ctx, settings.retention.by_kind())
    sync = ProfileSync(directory, rollups, deals)
    outputs = None
    if send_records is not None:
        outputs = Outputs(
            ctx,
            alerts_topic=settings.topics.alerts,
            responses_topic=settings.topics.lead_responses,
            lookback_seconds=settings.alert_lookback_seconds,
            send=send_records,
        )
    processor = BatchProcessor(
        settings,
        deals=deals,
        intake=intake,
        rep_profiles=rep_profiles,
        rep_intake=rep_intake,
        rollups=rollups,
        publish_dead_letter=publish_dead_letter,
        clock=clock,
        before_deal_batch=sync,
        outputs=outputs,
    )
    return InMemoryWorker(deals, intake, rep_profiles, rep_intake, directory, rollups, sync, outputs, processor)
