"""Whether the broker still holds what this worker's tables hold, and starting over when not.

A broker back empty (its data and its consumer groups gone), or topics recreated, leave the tables
ahead of it: served as fresh, impossible to rebuild, and skipping the new events as redeliveries.
The worker then starts over in the same process (:mod:`streams.kafka.start_over`). RELIABILITY.md says
what is checked when, and the edges.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import NoReturn

import faust
from faust.types import TP

from streams.ingest.processor import BatchProcessor
from streams.kafka.start_over import discard_what_recovery_finds, start_over
from streams.state.tables import Tables

log = logging.getLogger(__name__)

FLUSH_BEFORE_STARTING_OVER_SECONDS = 10.0
LOSS_CONFIRM_SECONDS = 3.0  # a new leader's high watermark can lag for an instant


class BrokerLossCheck:
    def __init__(self, app: faust.App, processor: BatchProcessor, tables: Tables) -> None:
        self.app = app
        self.processor = processor
        self.tables = tables
        self._discard_recovered = discard_what_recovery_finds()

    async def after_recovery(self) -> None:
        """Tables recovered, input not resumed: on the first recovery after a start over, check what
        the old image left; then check the broker. Neither may fail the recovery."""
        if self._discard_recovered:
            try:
                await self._discard_what_the_old_image_left()
            except BaseException as exc:  # cancelled by a new rebalance, or a send failed: again, whole
                await self._start_over(f"could not check or delete what the changelogs held from before ({exc!r})")
            self._discard_recovered = False
        try:
            await self._start_over_if_the_broker_lost_data()
        except Exception as exc:  # say so, check at the next one
            log.warning("could not check what the broker holds (%r); the next rebalance checks again", exc)

    async def after_silence(self) -> None:
        """No flush, hence no commit, until checked: input read from a broker that lost data must
        not be committed there before this worker starts over (it would never be read again)."""
        async with self.processor.flushes_held():
            await self._start_over_if_the_broker_lost_data()

    async def _discard_what_the_old_image_left(self) -> None:
        """The first recovery after a start over: what the changelogs hold was written before it.
        Writes the old image had queued while the broker was away reach the new broker when it
        answers (the producer retries them), so a broker back empty may hold a few. When anything
        recovered, a deal's watermarks included, is ahead of the broker's logs, it is all deleted
        through the changelogs; when nothing is (the start over was needless), all of it is kept."""
        read = self._read_offsets()
        for tp, offset in self._deal_watermarks().items():
            read[tp] = max(offset, read.get(tp, -1))
        ahead = sorted(f"{tp.topic}[{tp.partition}]" for tp in await self._logs_behind(read))
        if not ahead:
            log.warning("started over: what the changelogs hold is consistent with the broker, and is kept")
            return
        async with self.processor.lock:
            discarded = await self.tables.discard_everything()
        # With nothing held, no committed offset says what was read: the input is read again whole.
        self.app.consumer.read_from_start_at_next_seek(self.processor.topic_of)  # type: ignore[attr-defined]
        log.warning(
            "started over: what the changelogs hold is ahead of the broker on %s: deleted its %d records",
            ", ".join(ahead),
            discarded,
        )

    def _deal_watermarks(self) -> dict[TP, int]:
        """The highest input offset any deal record has absorbed, per input partition."""
        return {
            TP(*where): offset
            for where, offset in self.processor.deal_watermarks(self.tables.deals.data.values()).items()
        }

    async def _start_over_if_the_broker_lost_data(self) -> None:
        """The broker must still hold what the tables hold. A broker back empty or topics recreated
        leave the tables ahead of it: served as fresh, impossible to rebuild, and skipping the new
        events as redeliveries. This worker then starts over from the broker. Checked once the
        tables are recovered, before the input resumes, and when the broker answers after a silence.

        The logs must still end too early a moment later (a new leader's high watermark can lag for
        an instant). A start over for nothing costs a restart, not data: the new image deletes what
        it recovers only when that too is ahead of the broker."""
        behind = await self._logs_behind_the_tables()
        if not behind:
            return
        await asyncio.sleep(LOSS_CONFIRM_SECONDS)
        behind = await self._logs_behind_the_tables()
        if behind:
            await self._start_over(_lost(behind))

    async def before_reading_again(self, partitions: set[TP]) -> None:
        """The group's committed offsets on ``partitions`` are past their logs' ends: the broker lost
        data (no confirmation needed). If the tables hold any of it, start over; else (a new image,
        or tables that never read these partitions) the transport reads them from their start."""
        behind = await self._logs_behind_the_tables()
        if behind:
            past = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(partitions))
            await self._start_over(f"the group's committed offsets are past the end of {past}; {_lost(behind)}")

    async def _logs_behind_the_tables(self) -> dict[TP, tuple[int, int]]:
        return await self._logs_behind(self._read_offsets())

    async def _logs_behind(self, read: dict[TP, int]) -> dict[TP, tuple[int, int]]:
        """The partitions whose log ends at or below what was ``read`` of them: (read, end)."""
        if not read:
            return {}
        ends = await self.app.consumer.log_ends({tp: offset + 1 for tp, offset in read.items()})
        return {tp: (read[tp], end) for tp, end in ends.items() if end <= read[tp]}

    async def _start_over(self, why: str) -> NoReturn:
        """Let the producer finish what it is sending first, rather than cut requests off (what it
        sends is checked by the new image anyway)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.app.producer.flush(), FLUSH_BEFORE_STARTING_OVER_SECONDS)
        start_over(why, wipe=Path(self.app.conf.tabledir))

    def _read_offsets(self) -> dict[TP, int]:
        """The highest offset the tables hold of each input partition this worker owns (counted by
        the intake tallies) and of each changelog partition recovery read. The second is Faust's
        recovery consistency check, which crashes the worker instead: build_app turns it off."""
        inputs = set(self.processor.topic_of)
        owned = [tp for tp in self.app.assignor.assigned_actives() if tp.topic in inputs]
        read = {TP(*where): offset for where, offset in self.processor.absorbed_offsets(owned).items()}
        recovery = self.app.tables.recovery
        for tp in recovery.active_tps:
            offset = recovery.active_offsets.get(tp)
            if offset is not None and offset >= 0:
                read[tp] = offset
        return read


def _lost(behind: dict[TP, tuple[int, int]]) -> str:
    return "the broker lost data this worker holds: " + "; ".join(
        f"{tp.topic}[{tp.partition}] ends at offset {end}, this worker read up to {read}"
        for tp, (read, end) in sorted(behind.items())
    )
