"""The rep directory: the profile table's histories, decoded once and changed only by ``sync``.

Contributions resolve teams and working hours against this directory, and the aggregates hold
what they computed. So the directory changes only in :meth:`RepDirectory.sync`, which reports
the reps whose history changed (with the history they had) so that their deals' aggregates can
be moved to the new profiles (:mod:`streams.state.profile_sync`).
"""

from __future__ import annotations

from collections.abc import Mapping

from streams.fold.profiles import History
from streams.state.codec import decode_profile_history


class RepDirectory:
    def __init__(self, table: Mapping[bytes, bytes]) -> None:
        self.table = table
        self._cache: dict[str, tuple[bytes, int, History]] = {}  # rep -> (record, partition, history)

    def history(self, rep: str) -> History:
        cached = self._cache.get(rep)
        return cached[2] if cached is not None else ()

    def partition_of(self, rep: str) -> int | None:
        """The ``crm.reps`` partition the rep's profiles came from."""
        cached = self._cache.get(rep)
        return cached[1] if cached is not None else None

    def reps(self) -> list[str]:
        return sorted(self._cache)

    def sync(self, limit: int | None = None) -> dict[str, History]:
        """Take in the table's current records (at most ``limit`` changed reps; the rest at the
        next call); returns the changed reps with their previous history."""
        changed: dict[str, History] = {}
        present = set()
        for key, record in list(self.table.items()):
            rep = key.decode()
            present.add(rep)
            cached = self._cache.get(rep)
            if (cached is not None and cached[0] == record) or (limit is not None and len(changed) >= limit):
                continue
            partition, history = decode_profile_history(record)
            changed[rep] = cached[2] if cached is not None else ()
            self._cache[rep] = (record, partition, history)
        for rep in [rep for rep in self._cache if rep not in present]:
            if limit is None or len(changed) < limit:
                changed[rep] = self._cache.pop(rep)[2]
        return changed
