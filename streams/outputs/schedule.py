"""When each deal of the owned partitions next owes an alert: a heap, not a scan of every deal.

One entry per deal (the latest time set for it wins; older heap entries are skipped when they
surface), so the timer pops only the deals that are due.
"""

from __future__ import annotations

import heapq
import itertools


class AlertSchedule:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []
        self._due: dict[str, tuple[float, int]] = {}  # deal -> (due, partition)
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._due)

    def set(self, deal_id: str, partition: int, due: float | None) -> None:
        """Due at ``due`` (None: nothing to schedule for the deal)."""
        if due is None:
            self._due.pop(deal_id, None)
            return
        if self._due.get(deal_id) == (due, partition):
            return
        self._due[deal_id] = (due, partition)
        heapq.heappush(self._heap, (due, next(self._order), deal_id))
        if len(self._heap) > 4 * len(self._due) + 64:  # mostly superseded entries: compact
            self._heap = [(at, next(self._order), deal) for deal, (at, _) in self._due.items()]
            heapq.heapify(self._heap)

    def pop_due(self, now: float, limit: int) -> list[tuple[str, int]]:
        """Up to ``limit`` (deal, partition) due at or before ``now``, earliest first."""
        found: list[tuple[str, int]] = []
        while self._heap and self._heap[0][0] <= now and len(found) < limit:
            due, _, deal_id = heapq.heappop(self._heap)
            current = self._due.get(deal_id)
            if current is None or current[0] != due:
                continue  # superseded
            del self._due[deal_id]
            found.append((deal_id, current[1]))
        return found

    def next_due(self) -> float | None:
        while self._heap:
            due, _, deal_id = self._heap[0]
            current = self._due.get(deal_id)
            if current is not None and current[0] == due:
                return due
            heapq.heappop(self._heap)
        return None

    def keep_partitions(self, partitions: set[int]) -> None:
        """Forget the deals of partitions no longer owned."""
        for deal_id in [deal for deal, (_, partition) in self._due.items() if partition not in partitions]:
            del self._due[deal_id]
