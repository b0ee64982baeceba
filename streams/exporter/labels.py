"""Label values from closed sets (STYLE: labels never carry open-ended values)."""

from __future__ import annotations

from collections.abc import Iterable

from schemas.events import KNOWN_SOURCES, Stage

OTHER = "other"
UNKNOWN_SOURCE = "unknown"
_STAGES = frozenset(stage.value for stage in Stage)


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
