"""Label values from closed sets (STYLE: labels never carry open-ended values)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.events import KNOWN_SOURCES, Stage

OTHER = "other"
UNKNOWN = "unknown"
UNKNOWN_SOURCE = UNKNOWN
_STAGES = frozenset(stage.value for stage in Stage)
LOST_REASONS_EXPORTED = 20  # SPEC §3: the 20 most frequent per worker by name, the rest as `other`
FOLDED_COUNTED_AT_MOST = 1_000_000  # distinct values remembered to count the folded ones


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


class FoldedValues:
    """Distinct values of a label exported as ``other`` (kept up to a bound, to be counted)."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add(self, value: str) -> None:
        if len(self.values) < FOLDED_COUNTED_AT_MOST:
            self.values.add(value)


class LabelBudget:
    """At most ``limit`` distinct values of an open label (``rep``, ``team``) per worker.

    The first ``limit`` values seen keep their own label for as long as the worker runs (a
    value never flips between its own label and ``other``); later ones are exported as
    ``other``, summed, and counted in ``folded``. A producer that invents a rep id per event
    therefore costs Prometheus a bounded number of series, and the overflow shows on a metric.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept: set[str] = set()
        self.folded = FoldedValues()

    def __call__(self, value: str) -> str:
        if value in self.kept:
            return value
        if len(self.kept) < self.limit:
            self.kept.add(value)
            return value
        self.folded.add(value)
        return OTHER


@dataclass(frozen=True)
class LabelBudgets:
    """The budgets of one worker's open labels (its /metrics; the API answers for every value)."""

    rep: LabelBudget
    team: LabelBudget
    currency: LabelBudget
    # Closed labels have no budget: what they fold into ``other`` is only counted.
    source: FoldedValues = field(default_factory=FoldedValues)
    stage: FoldedValues = field(default_factory=FoldedValues)
    lost_reason: FoldedValues = field(default_factory=FoldedValues)

    def by_label(self) -> dict[str, LabelBudget]:
        return {"rep": self.rep, "team": self.team, "currency": self.currency}

    def folded_counts(self) -> dict[str, int]:
        """Distinct values exported as ``other``, per label (``leadpulse_label_values_folded``)."""
        folded = {label: budget.folded for label, budget in self.by_label().items()}
        folded |= {"source": self.source, "stage": self.stage, "lost_reason": self.lost_reason}
        return {label: len(values.values) for label, values in folded.items()}
