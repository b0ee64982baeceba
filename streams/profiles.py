"""Rep profiles as the exporter and API read them: teams, resolved when read."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from schemas.events import RepProfile
from streams.codec import decode_profile

DEFAULT_TEAM = "unassigned"


class RepDirectory:
    """Looks up rep profiles in the (global) profile table, decoding each record once."""

    def __init__(self, table: Mapping[bytes, bytes]) -> None:
        self.table = table
        self._decoded: dict[bytes, tuple[bytes, RepProfile]] = {}

    def profile(self, rep: str) -> RepProfile | None:
        key = rep.encode()
        record = self.table.get(key)
        if record is None:
            return None
        cached = self._decoded.get(key)
        if cached is None or cached[0] is not record:
            cached = self._decoded[key] = (record, decode_profile(record))
        return cached[1]

    def team_of(self, rep: str, team: str | None) -> str:
        """SPEC §2: an event's team is its ``team`` field, else its rep's profile team, else unassigned."""
        if team:
            return team
        profile = self.profile(rep)
        return profile.team if profile is not None else DEFAULT_TEAM

    def reps(self) -> Iterator[str]:
        for key in list(self.table.keys()):
            yield key.decode()
