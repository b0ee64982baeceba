"""A picture of the Grafana board drawn from a real Prometheus (Grafana is not in Debian's archive,
so no real Grafana runs here): each panel's own queries, drawn with matplotlib in the board's layout
(stat panels as numbers, bar gauges as bars, time series as lines over the last minutes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from tests.test_deploy import DASHBOARD

BACKGROUND, CARD, TEXT, DIM = "#111217", "#181b1f", "#d8d9da", "#8e8e8e"
HISTORY_SECONDS = 120  # the time series panels' span: Prometheus started just before
COLORS = ["#73bf69", "#f2cc0c", "#5794f2", "#ff780a", "#b877d9", "#f2495c", "#8ab8ff", "#ca95e5"]


def legend(template: str, labels: dict[str, str]) -> str:
    text = template
    for key, value in labels.items():
        text = text.replace("{{" + key + "}}", value)
    return text.replace("{{", "").replace("}}", "").strip() or "value"


def show(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value / 60:.1f} min" if value >= 120 else f"{value:.0f} s"
    if unit == "percentunit":
        return f"{value:.0%}"
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:.2f}".rstrip("0").rstrip(".")


def draw(stack: Any, path: Path) -> None:
    board = json.loads(DASHBOARD.read_text())
    panels = [panel for panel in board["panels"] if panel["type"] != "row"]
    top = 2  # grid rows above the board: its title
    rows = top + max(panel["gridPos"]["y"] + panel["gridPos"]["h"] for panel in panels)
    figure = plt.figure(figsize=(24, rows * 0.42), facecolor=BACKGROUND)
    title = f"{board['title']}: the provisioned board's queries, drawn from a real Prometheus"
    figure.text(0.005, 1 - 1.2 / rows, title, color=TEXT, fontsize=15)
    for panel in panels:
        pos = panel["gridPos"]
        box = [pos["x"] / 24 + 0.003, 1 - (top + pos["y"] + pos["h"]) / rows + 0.004]
        ax = figure.add_axes([*box, pos["w"] / 24 - 0.006, pos["h"] / rows - 0.016], facecolor=CARD)
        ax.set_title(panel["title"], color=TEXT, fontsize=9, loc="left")
        ax.tick_params(colors=DIM, labelsize=7)
        for spine in ax.spines.values():
            spine.set_visible(False)
        unit = panel["fieldConfig"]["defaults"]["unit"]
        series: list[tuple[str, Any]] = []
        for target in panel["targets"]:
            expr = target["expr"].replace("$team", ".*").replace("$rep", ".*")
            if panel["type"] == "timeseries":
                for result in stack.query_range(expr, HISTORY_SECONDS, 2):
                    series.append((legend(target["legendFormat"], result["metric"]), result["values"]))
            else:
                for result in stack.query(expr):
                    series.append((legend(target["legendFormat"], result["metric"]), float(result["value"][1])))
        if panel["type"] == "timeseries":
            for index, (name, values) in enumerate(series[:8]):
                times = [(float(t) - float(values[-1][0])) / 60 for t, _ in values]
                ax.plot(times, [float(v) for _, v in values], color=COLORS[index % len(COLORS)], label=name)
            ax.legend(fontsize=6, facecolor=CARD, labelcolor=TEXT, edgecolor=CARD, loc="upper left")
            ax.set_xlabel("minutes", color=DIM, fontsize=7)
        elif panel["type"] in ("bargauge", "table"):
            shown = sorted(series, key=lambda item: item[0])[:12]
            names = [name for name, _ in shown]
            values = [value if value == value else 0.0 for _, value in shown]  # NaN: nothing to divide
            ax.barh(range(len(shown)), values, color=[COLORS[i % len(COLORS)] for i in range(len(shown))])
            ax.set_yticks(range(len(shown)), names, fontsize=6, color=TEXT)
            ax.invert_yaxis()
            for index, value in enumerate(values):
                ax.text(value, index, " " + show(value, unit), va="center", color=TEXT, fontsize=6)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
            shown = sorted(series, key=lambda item: item[0])[:4]
            for index, (name, value) in enumerate(shown):
                x = (index + 0.5) / max(1, len(shown))
                ax.text(
                    x,
                    0.55,
                    show(value, unit),
                    color=COLORS[index % len(COLORS)],
                    fontsize=16,
                    ha="center",
                    transform=ax.transAxes,
                )
                ax.text(x, 0.25, name, color=DIM, fontsize=7, ha="center", transform=ax.transAxes)
    figure.savefig(path, dpi=80, facecolor=BACKGROUND)
    plt.close(figure)
