"""The cell-projected families of /metrics, followed from the cells that changed.

Projecting every cell of every current period on each scrape read about 780,000 cells for a
month of 1,000 reps: seconds of the event loop. The view keeps, per metric and scope, each
series' accumulator, how many cells feed it, and its rendered text. On each scrape it takes the
cells that changed since the previous one (:meth:`PartitionRollup.take_changes`, with each
cell's value then) and moves only the series they feed; only those are rendered again. It
starts over from every cell when the owned partitions change, a partition was rebuilt, or its
changes were not followed (the first scrape, too many changes between scrapes, a prune).

Cells are routed to series by the same :class:`Route` as a full projection
(:func:`streams.metrics.figures.project`, which the API and the volatile metrics use), with the
worker's :class:`Labelling` only: labels that depend on the moment of the read would not hold
between scrapes, so those metrics are projected in full each time by the collector.
``tests/test_exporter_series.py`` checks the view against full projections after random changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from streams.exporter.text import Rows, label_text, series_text
from streams.fold.contributions import Family, Scope
from streams.metrics.figures import (
    Accumulator,
    FigureReader,
    Route,
    Routes,
    add_cells,
    exported,
    scopes_of,
    with_period,
)
from streams.metrics.spec import Kind, Labelling, MetricSpec
from streams.state.rollups import ZERO, Labels, Rollups

_NONE: dict = {}
START_OVER_SHARE = 0.5  # more changed cells than this share of the cells read: read them all instead
Change = tuple[Labels, tuple[int, int], Sequence[int] | None]  # raw labels, value before, value now (None: gone)


class SeriesTable:
    """One metric in one scope: per series (its labels without ``period``) the accumulator, the
    number of cells feeding it, and its text once rendered."""

    def __init__(self, spec: MetricSpec, period: str | None) -> None:
        self.spec = spec
        self.period = period
        self.accs: dict[tuple[str, ...], Accumulator] = {}
        self.refs: dict[tuple[str, ...], int] = {}
        self.text: dict[tuple[str, ...], str] = {}
        self.histogram = spec.kind is Kind.HISTOGRAM
        self.slots = len(spec.buckets) + 1

    def move(self, route: Route, total: bool, changes: Iterable[Change]) -> None:
        """Moves each series fed by a changed cell from the cell's old value to its new one."""
        accs, refs, text, slots, histogram = self.accs, self.refs, self.text, self.slots, self.histogram
        for raw, (old_count, old_total), new in changes:
            hit = route[raw]
            if hit is None:
                continue
            key, slot = hit
            new_count, new_total = ZERO if new is None else new
            acc = accs.get(key)
            if acc is None:
                acc = accs[key] = [0] * (slots + 1) if histogram else [0]
                refs[key] = 0
            fed = refs[key] + (new is not None) - (old_count != 0 or old_total != 0)
            if histogram:
                acc[slot] += new_count - old_count
                acc[slots] += new_total - old_total
            else:
                acc[0] += new_total - old_total if total else new_count - old_count
            text.pop(key, None)
            if fed:
                refs[key] = fed
            else:  # no cell feeds it any more: the series goes (its sums are back to zero)
                del accs[key], refs[key]

    def rows(self) -> Rows:
        spec, period = self.spec, self.period
        return [(with_period(spec, key, period), exported(spec, acc)) for key, acc in self.accs.items()]

    def render(self, out: list[str]) -> None:
        text = self.text
        for key, acc in self.accs.items():
            lines = text.get(key)
            if lines is None:
                labels = label_text(self.spec, with_period(self.spec, key, self.period))
                lines = text[key] = series_text(self.spec, labels, exported(self.spec, acc))
            out.append(lines)


class Tables(list[SeriesTable]):
    """A metric's tables, one per scope it reads now."""

    def rows(self) -> Rows:
        return [row for table in self for row in table.rows()]

    def render(self, out: list[str]) -> None:
        for table in self:
            table.render(out)


class SeriesView:
    """The non-volatile cell metrics, kept from one scrape to the next."""

    def __init__(self, rollups: Rollups, labelling: Labelling) -> None:
        self.rollups = rollups
        self.labelling = labelling
        self.routes = Routes(labelling)
        self.tables: dict[tuple[str, Scope], SeriesTable] = {}
        self.basis: dict[int, int] | None = None  # owned partition -> its rollup's serial

    def read(self, reader: FigureReader, specs: Iterable[MetricSpec]) -> dict[str, Tables]:
        """Each spec's tables at ``reader``'s moment, moved by the cells changed since the last read."""
        at = reader.now
        wanted = [(spec, scope, period) for spec in specs for scope, period in scopes_of(spec, reader.calendar, at)]
        scopes = {scope for _, scope, _ in wanted}
        changed = self._take_changes(reader.partitions, scopes)
        if changed and self._cheaper_to_start_over(changed, reader, wanted):
            changed = None
        if changed is None:
            self.tables, self.routes = {}, Routes(self.labelling)
            changed = {}
        tables: dict[tuple[str, Scope], SeriesTable] = {}
        found: dict[str, Tables] = {}
        for spec, scope, period in wanted:
            table = self.tables.get((spec.name, scope))
            fresh = table is None
            if table is None:
                table = SeriesTable(spec, period)
            cells = reader.cells(scope)
            for source in spec.sources:
                route = self.routes.of(source, spec.cell_labels, {})
                if fresh:
                    for partition in cells(source.family):
                        add_cells(table.accs, spec, source, route, partition, table.refs)
                elif (scope, source.family) in changed:
                    table.move(route, source.total, changed[(scope, source.family)])
            tables[(spec.name, scope)] = table
            found.setdefault(spec.name, Tables()).append(table)
        self.tables = tables  # a scope no longer current is forgotten with its tables
        return found

    def _cheaper_to_start_over(self, changed: dict, reader: FigureReader, wanted: list) -> bool:
        """More cells changed than ``START_OVER_SHARE`` of those a start-over would read."""
        read = {(scope, source.family) for spec, scope, _ in wanted for source in spec.sources}
        cells = sum(len(part) for scope, family in read for part in reader.cells(scope)(family))
        return sum(map(len, changed.values())) > START_OVER_SHARE * cells

    def _take_changes(
        self, owned: Sequence[int], scopes: set[Scope]
    ) -> dict[tuple[Scope, Family], list[Change]] | None:
        """The owned partitions' changed cells in ``scopes``, by scope and family; None to start over."""
        feeds: dict[Scope, list[Scope]] = defaultdict(list)  # a stored scope -> the scopes read that sum it
        for scope in scopes:
            for stored in self.rollups.stored_scopes(scope):
                feeds[stored].append(scope)
        basis: dict[int, int] = {}
        changed: dict[tuple[Scope, Family], list[Change]] = defaultdict(list)
        followed = True
        for partition in self.rollups.partitions():  # every partition's, so none piles up unread
            rollup = self.rollups.partition(partition)
            assert rollup is not None
            changes = rollup.take_changes()
            if partition not in owned:
                continue
            basis[partition] = rollup.serial
            if changes is None:
                followed = False
                continue
            sums = rollup.sums
            for (scope, family, labels), before in changes.items():
                if scope in feeds:
                    cells = sums.get(scope)
                    cell = cells.get(family, _NONE).get(labels) if cells is not None else None
                    for read in feeds[scope]:  # a month's change moves its quarter and year too
                        changed[(read, family)].append((labels, before, cell))
        started_over = not followed or basis != self.basis
        self.basis = basis
        return None if started_over else changed
