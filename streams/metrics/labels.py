"""Label values from closed sets (STYLE: labels never carry open-ended values)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from schemas.events import KNOWN_SOURCES, Stage

OTHER = "other"
UNKNOWN = "unknown"
UNKNOWN_SOURCE = UNKNOWN
_STAGES = frozenset(stage.value for stage in Stage)
LOST_REASONS_EXPORTED = 20  # SPEC §3: the 20 most frequent per worker by name, the rest as `other`


class SourceLabels:
    """Lead sources: the well-known ones, those with a configured SLA, else ``other``."""

    def __init__(self, configured: Iterable[str] = ()) -> None:
        self.known = frozenset(KNOWN_SOURCES) | frozenset(configured)

    def __call__(self, source: str | None) -> str:
        if source is None:
            return UNKNOWN_SOURCE
        return source if source in self.known else OTHER


def stage_label(stage: str) -> str:
    """A well-known stage, else ``other`` (the API still shows the CRM's own stage name)."""
    return stage if stage in _STAGES else OTHER


class TopReasons:
    """Lost reasons as labels: the ``limit`` most frequent (ties by name), the rest ``other``;
    a lost deal without a reason is ``unknown``."""

    def __init__(self, counts: Counter[str | None], limit: int = LOST_REASONS_EXPORTED) -> None:
        ranked = sorted(((-count, reason) for reason, count in counts.items() if reason is not None))
        self.kept = frozenset(reason for _, reason in ranked[:limit])

    def __call__(self, reason: str | None) -> str:
        if reason is None:
            return UNKNOWN
        return reason if reason in self.kept else OTHER
