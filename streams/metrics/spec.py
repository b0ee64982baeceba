"""What a catalog entry is: its kind, scope and cell sources, and the label mapping a read
applies to a cell. :mod:`streams.metrics.catalog` lists the entries, :mod:`streams.metrics.figures`
computes them; both import these types from here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from streams.config import DEFAULT_STAGE_PROBABILITIES
from streams.fold.contributions import Family
from streams.fold.periods import STORED, PeriodKind
from streams.metrics.labels import OTHER, LabelBudget, LabelBudgets, SourceLabels, stage_label

Raw = tuple[str | None, ...]


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


class Scope(StrEnum):
    LIFETIME = "lifetime"  # since the input topics began (counters)
    PERIOD = "period"  # the current calendar period, one series per period kind
    PREVIOUS_PERIOD = "previous_period"  # the period before the current one, same kinds
    LIVE = "live"  # state now
    ENGINE = "engine"  # about the worker itself


@dataclass(frozen=True)
class CellSource:
    """How one aggregate family feeds a metric.

    ``wide`` turns a cell's raw labels into values for ``names`` (None skips the cell); the
    metric keeps its own labels and sums over the rest. ``total`` takes the cell's micro-total
    instead of its count. For histograms the raw labels end with the bucket index. A
    ``volatile`` source's labels depend on the moment of the read (teams now, today, the lost
    reasons ranked now): only those may read more of ``Resolve`` than its ``Labelling`` part.
    """

    family: Family
    names: tuple[str, ...]
    wide: Callable[[Raw, Resolve], tuple[str, ...] | None]
    total: bool = False
    volatile: bool = False
    weighted: bool = False  # each cell's value times the probability of its (mapped) stage

    @property
    def bucketed(self) -> bool:
        """Histogram cells: the raw labels end with the bucket index."""
        return self.names[-1] == "bucket"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...]
    scope: Scope = Scope.ENGINE
    sources: tuple[CellSource, ...] = ()
    buckets: tuple[int, ...] = ()  # histograms: upper bounds in seconds
    periods: tuple[PeriodKind, ...] = STORED  # period metrics: the kinds exported

    @cached_property  # read for every series of every scrape
    def exposed_names(self) -> tuple[str, ...]:
        """The sample names Prometheus sees for this family."""
        if self.kind is Kind.COUNTER:
            return (f"{self.name}_total",)
        if self.kind is Kind.HISTOGRAM:
            return (f"{self.name}_bucket", f"{self.name}_count", f"{self.name}_sum")
        return (self.name,)

    @property
    def volatile(self) -> bool:
        """Its labels depend on the moment of the read (see :class:`CellSource`)."""
        return any(source.volatile for source in self.sources)

    @property
    def cell_labels(self) -> tuple[str, ...]:
        """The labels that come from the cells (``period`` is added by the scope)."""
        return tuple(label for label in self.labels if label != "period")


@dataclass(frozen=True)
class Labelling:
    """The label mapping that holds as long as the worker runs: closed sets, topic names."""

    source: SourceLabels
    topic_name: Callable[[str], str]
    budgets: LabelBudgets | None = field(default=None, kw_only=True)  # /metrics caps open labels; the API not
    stage_probabilities: Mapping[str, float] = field(default_factory=lambda: DEFAULT_STAGE_PROBABILITIES, kw_only=True)

    def probability(self, stage: str) -> float:
        """The weighted pipeline's probability of a stage label (``other`` for any stage outside the set)."""
        probabilities = self.stage_probabilities
        return probabilities.get(stage, probabilities["other"])

    def source_label(self, source: str | None) -> str:
        return self._counted(self.source(source), source, "source")

    def stage_label(self, stage: str) -> str:
        return self._counted(stage_label(stage), stage, "stage")

    def _counted(self, label: str, value: str | None, name: str) -> str:
        """``label``, noting ``value`` among the folded ones of /metrics when it became ``other``."""
        if label == OTHER and value is not None and self.budgets is not None:
            getattr(self.budgets, name).add(value)
        return label

    def capped(self, names: tuple[str, ...]) -> list[tuple[int, LabelBudget]]:
        """The positions among ``names`` of the labels this mapping caps, with their budgets."""
        if self.budgets is None:
            return []
        return [(names.index(label), budget) for label, budget in self.budgets.by_label().items() if label in names]


@dataclass(frozen=True)
class Resolve(Labelling):
    """The label mapping of one read: also teams now, today's date, lost reasons ranked now."""

    reason: Callable[[str | None], str]
    team_now: Callable[[str, str | None], str]
    today: str  # YYYY-MM-DD in the reporting timezone

    def reason_label(self, reason: str | None) -> str:
        return self._counted(self.reason(reason), reason, "lost_reason")
