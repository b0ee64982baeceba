"""Moving the aggregates onto changed rep profiles (a late profile still applies, SPEC §2).

Contributions resolve teams and working hours against the rep directory when a deal changes.
When profiles change, the deals of the owned partitions that mention an affected rep are
moved from their contributions under the old histories to those under the new ones. Deals are
found by looking for the rep's JSON string in the raw records (cheap, no decoding), so a
profile change costs a scan of the records plus a recomputation of the few deals involved;
when many reps changed at once while there are few deals (a first load), every owned deal is
recomputed. A call takes in only as many changed reps as its work budget allows: the rest wait
for the next call (the next batch, the 0.5 s timer, or a scrape), each rep's aggregates moving
at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

import orjson

from streams.fold.deals import DealState
from streams.fold.profiles import History, ProfileLookup
from streams.state.codec import deal_partition, decode_deal
from streams.state.profiles import RepDirectory
from streams.state.rollups import Rollups

log = logging.getLogger(__name__)

SCAN_FOR_AT_MOST = 32  # changed reps looked for in the raw records; more: recompute every deal
# Work taken in one call, in (changed rep x deal record) checks: a bulk profile change (a first load,
# an HR sync) is spread over calls instead of stalling the event loop. With 100k deals, 20 reps a call.
WORK_PER_CALL = 2_000_000


class _AsBefore:
    """The directory as it was before a sync: the previous histories of the changed reps."""

    def __init__(self, directory: ProfileLookup, previous: Mapping[str, History]) -> None:
        self.directory = directory
        self.previous = previous

    def history(self, rep: str) -> History:
        previous = self.previous.get(rep)
        return previous if previous is not None else self.directory.history(rep)

    def reps(self) -> list[str]:
        return sorted(set(self.directory.reps()) | set(self.previous))


class ProfileSync:
    def __init__(
        self,
        directory: RepDirectory,
        rollups: Rollups,
        deals: Mapping[bytes, bytes],
        on_deals_changed: Callable[[list[tuple[int, DealState]]], object] | None = None,
    ) -> None:
        self.directory = directory
        self.rollups = rollups
        self.deals = deals
        self.on_deals_changed = on_deals_changed

    def __call__(self, work: int = WORK_PER_CALL) -> int:
        """Take in profile changes (as many reps as ``work`` allows, at least one); returns the
        number of deals recomputed."""
        deals, _bytes = self.rollups.table_size(self.rollups.partitions())  # len(table) scans RocksDB
        previous = self.directory.sync(limit=max(1, work // max(1, deals)))
        if not previous:
            return 0
        started = time.monotonic()
        owned = set(self.rollups.partitions())
        before = replace(self.rollups.ctx, profiles=_AsBefore(self.directory, previous))
        needles = [orjson.dumps(rep) for rep in previous] if len(previous) <= SCAN_FOR_AT_MOST else None
        moved: list[tuple[int, DealState]] = []
        for record in list(self.deals.values()):
            if deal_partition(record) not in owned:
                continue
            if needles is not None and not any(needle in record for needle in needles):
                continue
            partition, state = decode_deal(record)
            self.rollups.reapply(partition, state, before)
            moved.append((partition, state))
        if moved and self.on_deals_changed is not None:
            self.on_deals_changed(moved)
        log.info(
            "profiles of %d rep(s) changed; moved the aggregates of %d deal(s) in %.3fs",
            len(previous),
            len(moved),
            time.monotonic() - started,
        )
        return len(moved)
