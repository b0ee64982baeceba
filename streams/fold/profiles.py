"""Rep profiles over time (SPEC §2: the profile in force), as plain data and functions.

``crm.reps`` is compacted, so Kafka keeps only a rep's latest profile; LeadPulse keeps a short
history per rep (:data:`HISTORY_LIMIT` newest) so that a rep who moves team on the 1st keeps
last month's numbers in the old team. The history is a set ordered by ``(updated_at, record)``
with one profile per ``updated_at``, so any arrival order of the same profiles gives the same
history.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from streams.fold.worktime import WeekHours

DEFAULT_TEAM = "unassigned"
HISTORY_LIMIT = 50


@dataclass(frozen=True, slots=True)
class Profile:
    """What the engine reads from one rep profile (``record`` is its canonical JSON)."""

    rep: str
    updated_at: float
    team: str
    role: str
    timezone: str
    hours: WeekHours
    monthly_quota_micro: int | None
    currency: str
    calls_per_day: float | None
    emails_per_day: float | None
    meetings_per_week: float | None
    record: bytes


History = tuple[Profile, ...]  # sorted by (updated_at, record)


def merge(history: History, profile: Profile, limit: int = HISTORY_LIMIT) -> History:
    """The history with ``profile`` added: one profile per ``updated_at`` (the greatest record
    wins a tie), at most ``limit``, newest kept. Returns ``history`` itself when nothing changes."""
    order = (profile.updated_at, profile.record)
    same_time = [p for p in history if p.updated_at == profile.updated_at]
    if same_time and (same_time[0].updated_at, same_time[0].record) >= order:
        return history
    rest = [p for p in history if p.updated_at != profile.updated_at]
    bisect.insort(rest, profile, key=lambda p: (p.updated_at, p.record))
    merged = tuple(rest[-limit:])
    return history if merged == history else merged


def in_force(history: Sequence[Profile], at: float) -> Profile | None:
    """The profile with the latest ``updated_at`` at or before ``at``; the earliest when all are
    later; None without profiles."""
    if not history:
        return None
    index = bisect.bisect_right(history, at, key=lambda p: p.updated_at)
    return history[index - 1] if index else history[0]


class ProfileLookup(Protocol):
    """Where the fold finds profiles: the rep directory, or a dict in tests."""

    def history(self, rep: str) -> History: ...

    def reps(self) -> list[str]: ...


def profile_at(profiles: ProfileLookup, rep: str, at: float) -> Profile | None:
    return in_force(profiles.history(rep), at)


def team_at(profiles: ProfileLookup, rep: str, team: str | None, at: float) -> str:
    """SPEC §2: an event's ``team``, else its rep's team in force at ``at``, else ``unassigned``."""
    if team:
        return team
    profile = in_force(profiles.history(rep), at)
    return profile.team if profile is not None else DEFAULT_TEAM


class NoProfiles:
    """A lookup with no profiles at all (every team is ``unassigned`` unless the event names one)."""

    def history(self, rep: str) -> History:
        return ()

    def reps(self) -> list[str]:
        return []
