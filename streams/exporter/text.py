"""The Prometheus text format (0.0.4) written straight from the collector's rows.

prometheus-client builds a ``Sample`` per line and formats each label set again on every
scrape; with a hundred thousand series that was 40% of a scrape. Here a series is formatted by
:func:`series_text` (a histogram's bucket lines share one prefix), and :class:`TextWriter`
keeps each series' label text while the series is exported. The lines are those
``generate_latest`` writes, except that labels keep the catalog's order instead of being
sorted (Prometheus does not care; ``tests/test_exporter_text.py`` parses both and compares).
"""

from __future__ import annotations

from prometheus_client.utils import floatToGoString

from streams.metrics.spec import Kind, MetricSpec

Value = float | int
Histogram = tuple[list[tuple[str, int]], float]  # cumulative (le, count) pairs, sum
Rows = list[tuple[tuple[str, ...], Value | Histogram]]  # label values in the spec's order, value


def escape_label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def format_value(value: Value) -> str:
    return str(value) if type(value) is int else floatToGoString(value)


def label_text(spec: MetricSpec, values: tuple[str, ...]) -> str:
    return ",".join(f'{name}="{escape_label_value(value)}"' for name, value in zip(spec.labels, values, strict=True))


def header(spec: MetricSpec) -> str:
    exposed = spec.exposed_names[0] if spec.kind is not Kind.HISTOGRAM else spec.name
    help_text = spec.help.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {exposed} {help_text}\n# TYPE {exposed} {spec.kind.value}\n"


def series_text(spec: MetricSpec, labels: str, value: Value | Histogram) -> str:
    """One series' lines (a histogram's buckets, count and sum), given its label text."""
    braced = f"{{{labels}}}" if labels else ""
    if spec.kind is Kind.HISTOGRAM:
        buckets, total = value  # type: ignore[misc]
        bucket = f"{spec.name}_bucket{{{labels}," if labels else f"{spec.name}_bucket{{"
        lines = [f'{bucket}le="{le}"}} {count}\n' for le, count in buckets]
        lines.append(f"{spec.name}_count{braced} {buckets[-1][1]}\n{spec.name}_sum{braced} {format_value(total)}\n")
        return "".join(lines)
    return f"{spec.exposed_names[0]}{braced} {format_value(value)}\n"  # type: ignore[arg-type]


class TextWriter:
    """Writes families of rows; remembers each series' label text between scrapes."""

    def __init__(self) -> None:
        self._labels: dict[tuple[str, tuple[str, ...]], str] = {}
        self._seen: dict[tuple[str, tuple[str, ...]], str] = {}

    def rows(self, spec: MetricSpec, rows: Rows, out: list[str]) -> None:
        """Appends the rows' sample lines to ``out``."""
        for values, value in rows:
            key = (spec.name, values)
            labels = self._labels.get(key)
            if labels is None:
                labels = label_text(spec, values)
            self._seen[key] = labels
            out.append(series_text(spec, labels, value))

    def finish(self, out: list[str]) -> bytes:
        """The scrape's text; label texts of series not written this time are forgotten."""
        self._labels, self._seen = self._seen, {}
        return "".join(out).encode()
