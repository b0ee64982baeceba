"""Per-partition aggregates: a materialized view of the deal table, never its source of truth.

The deal table (changelog-backed) holds every fact; these sums are derived from it. They are
kept up to date as deals change (``apply``) or as rep profiles change (``reapply``), and
rebuilt from the table whenever a partition is assigned (``rebuild``), so a restart, a
rebalance or a redelivery cannot make them drift: they always equal the sum of
:func:`all_observations` over the partition's deals under the current profiles. Scrapes and
queries read these small sums instead of walking every deal.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from streams.fold.contributions import (
    AwaitingLead,
    DealView,
    Family,
    FoldContext,
    Key,
    Labels,
    Observation,
    Scope,
    activity_observations,
    all_observations,
    awaiting_lead,
    changed_observations,
    duplicate_observations,
    lead_moved,
)
from streams.fold.deals import DealState, FoldResult
from streams.fold.periods import DERIVED, PeriodKind, quarter_hour

# labels -> (count, micro_total). Immutable: millions of tuples of ints are not tracked by the
# garbage collector, where lists would make every full collection walk them all.
Cells = dict[Labels, tuple[int, int]]
# Counts applied, not yet in the cells: (partition, where, family, labels) -> (count, micro_total), where
# ``where`` is a scope, or a UTC quarter hour (an int) standing for the calendar periods containing it.
Pending = dict[tuple[int, Scope | int, Family, Labels], tuple[int, int]]


ZERO = (0, 0)
CHANGES_KEPT = 200_000  # changed cells followed per partition between two reads; beyond, the reader starts over
PENDING_KEPT = 100_000  # pending sums a rebuild gathers before it settles them: its memory stays bounded
_serials = itertools.count()


@dataclass
class PartitionRollup:
    """One partition's sums, and which cells changed since :meth:`take_changes` (with their
    values then), so a reader can follow the changes instead of reading every cell again.
    Changes are followed only once somebody takes them, and only up to ``CHANGES_KEPT``."""

    sums: dict[Scope, dict[Family, Cells]] = field(default_factory=dict)
    awaiting: dict[str, AwaitingLead] = field(default_factory=dict)
    deals: int = 0  # deal records in the partition
    record_bytes: int = 0  # their total size
    changes: dict[Key, tuple[int, int]] | None = None  # None: not followed (not yet, or too many)
    serial: int = field(default_factory=lambda: next(_serials))  # tells a rebuilt partition from the old

    def add_cell(self, scope: Scope, family: Family, labels: Labels, count: int, total: int) -> None:
        families = self.sums.get(scope)
        if families is None:
            families = self.sums[scope] = {}
        cells = families.get(family)
        if cells is None:
            cells = families[family] = {}
        cell = cells.get(labels)
        changes = self.changes
        if changes is not None:
            key = (scope, family, labels)
            if key not in changes:
                if len(changes) >= CHANGES_KEPT:
                    self.changes = None
                else:
                    changes[key] = ZERO if cell is None else cell
        if cell is None:
            if count or total:  # a cell exists only while it holds something
                cells[labels] = (count, total)
            return
        count += cell[0]
        total += cell[1]
        if count or total:
            cells[labels] = (count, total)
        else:
            del cells[labels]
            if not cells:
                del families[family]
                if not families:
                    del self.sums[scope]

    def take_changes(self) -> dict[Key, tuple[int, int]] | None:
        """The cells changed since the last call, each with its value then (``ZERO``: it did not
        exist); None when they were not followed (the reader reads every cell instead)."""
        changes, self.changes = self.changes, {}
        return changes

    def set_awaiting(self, deal_id: str, lead: AwaitingLead | None) -> None:
        if lead is None:
            self.awaiting.pop(deal_id, None)
        else:
            self.awaiting[deal_id] = lead


class Rollups:
    """The aggregates of every partition this worker holds, by partition.

    Every count goes through :meth:`_observe` (a deal change in :meth:`apply`, a whole deal in a
    rebuild's :meth:`add_deal`, a profile change in :meth:`reapply`) into a pending sum, where the counts
    of a batch meet (a rep's calls of one quarter hour, a deal's stage moved and moved back) before they
    are spread over the cells, four periods each: :meth:`settle` spreads them, and every method that
    reads or replaces cells settles first.
    """

    def __init__(self, ctx: FoldContext, retention: Mapping[PeriodKind, int] | None = None) -> None:
        self.ctx = ctx
        self.calendar = ctx.calendar
        self.retention = dict(retention or {})
        self._partitions: dict[int, PartitionRollup] = {}
        self._pending: Pending = {}

    def partitions(self) -> list[int]:
        return sorted(self._partitions)

    def partition(self, partition: int) -> PartitionRollup | None:
        self.settle()
        return self._partitions.get(partition)

    def settle(self) -> None:
        """Spread the pending counts over their cells."""
        pending, self._pending = self._pending, {}
        periods_of = self.calendar.periods_of_quarter_hour
        for (partition, where, family, labels), (count, total) in pending.items():
            if not (count or total):
                continue
            rollup = self._partitions[partition]
            if isinstance(where, int):
                for period in periods_of(where):
                    rollup.add_cell(period, family, labels, count, total)
            else:
                rollup.add_cell(where, family, labels, count, total)

    def _pend(self, partition: int, where: Scope | int, family: Family, labels: Labels, count: int, total: int) -> None:
        key = (partition, where, family, labels)
        pending = self._pending
        old = pending.get(key)
        pending[key] = (count, total) if old is None else (old[0] + count, old[1] + total)

    def _observe(self, partition: int, observation: Observation, times: int) -> None:
        """Pend an observation ``times`` times (negative: retract), in its scope or its quarter hour."""
        moment, scope, family, labels, total = observation
        where: Scope | int = quarter_hour(moment) if scope is None else scope
        self._pend(partition, where, family, labels, times, total * times)

    def rebuild(self, partition: int, records: Iterable[tuple[DealState, int]]) -> None:
        """Recompute a partition's aggregates from its deal states (with their record sizes)."""
        self.reset(partition)
        for state, size in records:
            self.add_deal(partition, state, size)
        self.settle()

    def reset(self, partition: int) -> None:
        """Empty aggregates for a partition, to be rebuilt deal by deal with :meth:`add_deal`."""
        self.settle()
        self._partitions[partition] = PartitionRollup()

    def add_deal(self, partition: int, state: DealState, size: int, view: DealView | None = None) -> None:
        """Count a whole deal (its record ``size`` bytes) into a partition being rebuilt. Its counts
        meet the other deals' in the pending sums: a deal is read, counted and let go, so a rebuild
        holds the aggregates and one deal at a time, not every deal of the partition."""
        rollup = self._partitions[partition]
        rollup.deals += 1
        rollup.record_bytes += size
        view = view or DealView(state)
        for observation, times in all_observations(state, self.ctx, view):
            self._observe(partition, observation, times)
        rollup.set_awaiting(state.deal_id, awaiting_lead(view, self.ctx))
        if len(self._pending) > PENDING_KEPT:
            self.settle()

    def prune(self, now: float) -> int:
        """Drop the aggregates of periods older than the retention; returns how many went.

        Lifetime counters and live state are never pruned. A late event for a pruned period
        brings back a small aggregate until the next prune.
        """
        self.settle()
        oldest = {kind: self.calendar.oldest_kept_start(kind, now, kept) for kind, kept in self.retention.items()}
        for derived in DERIVED:  # quarters and years are read from months: keep the months they need
            if derived in oldest:
                oldest[PeriodKind.MONTH] = min(oldest.pop(derived), oldest.get(PeriodKind.MONTH, float("inf")))
        dropped = 0
        for rollup in self._partitions.values():
            for scope in list(rollup.sums):
                kind = scope[0]
                if kind in oldest and self.calendar.start_of(scope).timestamp() < oldest[kind]:  # type: ignore[arg-type,index]
                    del rollup.sums[scope]
                    rollup.changes = None  # cells went without changes: readers start over
                    dropped += 1
        return dropped

    def drop(self, partition: int) -> None:
        self.settle()
        self._partitions.pop(partition, None)

    def apply(
        self,
        partition: int,
        before: DealState,
        result: FoldResult,
        size_change: tuple[int, int] = (0, 0),
        views: tuple[DealView, DealView] | None = None,
    ) -> None:
        """Move the aggregates from a deal's state ``before`` to ``result.state``.

        ``size_change`` is (old, new) record size in bytes; an old size of 0 is a new deal.
        ``views`` are the :class:`DealView` of ``before`` and of the new state when the caller has them.
        Only the rules whose inputs the change moved are recomputed (:func:`changed_observations`).
        """
        rollup = self._partitions.get(partition)
        if rollup is None:
            rollup = self._partitions[partition] = PartitionRollup()
        old_size, new_size = size_change
        rollup.deals += old_size == 0 and new_size > 0
        rollup.record_bytes += new_size - old_size
        for fact in result.added_activities:  # self._observe, not a local alias: mypyc calls it natively
            lifetime, periods = activity_observations(fact, self.ctx)
            self._observe(partition, lifetime, 1)
            self._observe(partition, periods, 1)
        if any(result.added_duplicates):
            for observation, times in duplicate_observations(result.added_duplicates):
                self._observe(partition, observation, times)
        if result.moves_deal_level:
            old, new = views if views is not None else (DealView(before), DealView(result.state))
            moved = changed_observations(old, new, self.ctx, result.stages_changed)
            for observation, times in moved.items():
                if times:
                    self._observe(partition, observation, times)
            if lead_moved(old, new, result.stages_changed):
                rollup.set_awaiting(result.state.deal_id, awaiting_lead(new, self.ctx))

    def resized(self, partition: int, old_size: int, new_size: int) -> None:
        """A deal record was rewritten without changing its facts (outputs marked sent)."""
        rollup = self._partitions.get(partition)
        if rollup is not None:
            rollup.record_bytes += new_size - old_size

    def reapply(self, partition: int, state: DealState, before: FoldContext) -> None:
        """Move a deal's aggregates from what they were under ``before`` (the profiles as they
        were) to what they are under the current context."""
        rollup = self._partitions.get(partition)
        if rollup is not None:
            view = DealView(state)
            for observation, times in all_observations(state, before, view):
                self._observe(partition, observation, -times)
            for observation, times in all_observations(state, self.ctx, view):
                self._observe(partition, observation, times)
            rollup.set_awaiting(state.deal_id, awaiting_lead(view, self.ctx))

    def cells(self, scope: Scope, family: Family, partitions: Iterable[int]) -> Iterator[tuple[Labels, int, int]]:
        """``(labels, count, micro_total)`` of one family in one scope, over the given partitions."""
        for cells in self.cell_maps(scope, family, partitions):
            for labels, (count, total) in cells.items():
                yield labels, count, total

    def stored_scopes(self, scope: Scope) -> list[Scope]:
        """The scopes the aggregates hold for ``scope``: its months for a quarter or a year, else itself."""
        return self.calendar.months_of(scope) if scope[0] in DERIVED else [scope]  # type: ignore[arg-type,return-value]

    def cell_maps(self, scope: Scope, family: Family, partitions: Iterable[int]) -> list[Cells]:
        """One family's cells in one scope, a dict per partition (read, never changed, by the caller);
        for a quarter or a year, a dict per partition and month: the caller sums them all alike."""
        self.settle()
        scopes = self.stored_scopes(scope)
        found = []
        for partition in partitions:
            rollup = self._partitions.get(partition)
            if rollup is None:
                continue
            for stored in scopes:
                cells = rollup.sums.get(stored, {}).get(family)
                if cells:
                    found.append(cells)
        return found

    def scopes(self, partitions: Iterable[int]) -> set[Scope]:
        """Every scope with aggregates in the given partitions (the periods kept)."""
        self.settle()
        found: set[Scope] = set()
        for partition in partitions:
            rollup = self._partitions.get(partition)
            if rollup is not None:
                found.update(rollup.sums)
        return found

    def table_size(self, partitions: Iterable[int]) -> tuple[int, int]:
        """(deal records, their bytes) over the given partitions."""
        rollups = [self._partitions[p] for p in partitions if p in self._partitions]
        return sum(r.deals for r in rollups), sum(r.record_bytes for r in rollups)

    def awaiting(self, partitions: Iterable[int]) -> Iterator[tuple[str, AwaitingLead]]:
        for partition in partitions:
            rollup = self._partitions.get(partition)
            if rollup is not None:
                yield from rollup.awaiting.items()
