"""First-response SLA with escalation steps (SPEC §2, §4), per lead source.

A source has one or more ascending steps (seconds of waiting); the first is its SLA. Waiting is
wall time since creation, or, with ``business_hours``, business time in the owner's working
hours (the owner's profile in force when the lead was created; the whole wait when the owner
has no profile).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from streams.fold.profiles import Profile
from streams.fold.worktime import business_deadline, business_seconds

UNKNOWN_SOURCE = "unknown"


@dataclass(frozen=True)
class SlaPolicy:
    default_steps: tuple[float, ...] = (300.0,)
    steps_by_source: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    business_hours: bool = False

    def steps(self, source: str | None) -> tuple[float, ...]:
        return self.steps_by_source.get(source or UNKNOWN_SOURCE, self.default_steps)

    def sla_seconds(self, source: str | None) -> float:
        return self.steps(source)[0]

    def crossings(self, created_at: float, source: str | None, profile: Profile | None) -> list[float]:
        """The instant each step is crossed by a lead created at ``created_at``."""
        steps = self.steps(source)
        if not self.business_hours or profile is None:
            return [created_at + seconds for seconds in steps]
        return [business_deadline(created_at, seconds, profile.timezone, profile.hours) for seconds in steps]

    def waited(self, start: float, end: float, profile: Profile | None) -> float:
        """How long a wait from ``start`` to ``end`` counts against the SLA."""
        if not self.business_hours or profile is None:
            return end - start
        return business_seconds(start, end, profile.timezone, profile.hours)


def policy_from(
    default: float | Sequence[float], by_source: Mapping[str, float | Sequence[float]], business_hours: bool
) -> SlaPolicy:
    def steps(value: float | Sequence[float]) -> tuple[float, ...]:
        return (float(value),) if isinstance(value, int | float) else tuple(float(v) for v in value)

    return SlaPolicy(steps(default), {source: steps(v) for source, v in by_source.items()}, business_hours)
