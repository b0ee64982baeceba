"""Writes ``dashboards/leadpulse.json``, the Grafana board, from this one definition.

    .venv/bin/python -m deploy.grafana.dashboard

Each panel names its queries once; a selector gets the ``team`` and ``rep`` template variables only
where the catalog gives the metric those labels (a matcher on a label the series lacks would hide
it). A test checks the file is what this script writes, and the end-to-end test runs every query
against a real Prometheus.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.metrics.catalog import CATALOG

OUTPUT = Path(__file__).resolve().parent / "dashboards" / "leadpulse.json"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
_LABELS = {name: spec.labels for spec in CATALOG for name in spec.exposed_names}


def sel(metric: str, **matchers: str) -> str:
    """``metric{...}`` with the given matchers, plus ``team``/``rep`` filters where it has them."""
    labels = _LABELS[metric]
    parts = [
        f'{name}="{value}"' if not value.startswith("~") else f'{name}=~"{value[1:]}"'
        for name, value in matchers.items()
    ]
    parts += [f'{variable}=~"${variable}"' for variable in ("team", "rep") if variable in labels]
    return f"{metric}{{{','.join(parts)}}}"


def quantile(q: float, histogram: str, by: str, **matchers: str) -> str:
    return f"histogram_quantile({q}, sum by (le, {by}) ({sel(histogram + '_bucket', **matchers)}))"


@dataclass
class Panel:
    title: str
    kind: str  # stat, bargauge, timeseries, table
    queries: list[tuple[str, str]]  # (legend, expr)
    unit: str = "none"
    width: int = 8
    height: int = 7
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    title: str
    panels: list[Panel]


DAY = {"period": "day"}
CALLS_EMAILS = "~calls|emails_sent"  # a regex matcher
QUOTAS = sel("leadpulse_monthly_quota")  # the reps with a quota, in the chosen teams
MONTH = {"period": "month"}

ROWS = [
    Row(
        "Sales floor: leads waiting, response, activity",
        [
            Panel(
                "Leads waiting for a first response now",
                "stat",
                [("{{team}}", f"sum by (team) ({sel('leadpulse_leads_awaiting_response')})")],
            ),
            Panel(
                "Oldest waiting lead",
                "stat",
                [("{{team}}", f"max by (team) ({sel('leadpulse_lead_oldest_awaiting_seconds')})")],
                unit="s",
            ),
            Panel(
                "Leads past SLA now", "stat", [("{{team}}", f"sum by (team) ({sel('leadpulse_leads_sla_breached')})")]
            ),
            Panel(
                "First response today by team: median and p90",
                "timeseries",
                [
                    ("p50 {{team}}", quantile(0.5, "leadpulse_first_response_seconds", "team", **DAY)),
                    ("p90 {{team}}", quantile(0.9, "leadpulse_first_response_seconds", "team", **DAY)),
                ],
                unit="s",
            ),
            Panel(
                "First response today by rep: median and p90",
                "bargauge",
                [
                    ("p50 {{rep}}", quantile(0.5, "leadpulse_first_response_seconds", "rep", **DAY)),
                    ("p90 {{rep}}", quantile(0.9, "leadpulse_first_response_seconds", "rep", **DAY)),
                ],
                unit="s",
            ),
            Panel(
                "Answered within 5 minutes today",
                "stat",
                [
                    (
                        "{{team}}",
                        f"sum by (team) ({sel('leadpulse_first_response_seconds_bucket', period='day', le='300')})"
                        f" / sum by (team) ({sel('leadpulse_first_response_seconds_count', period='day')})",
                    )
                ],
                unit="percentunit",
            ),
            Panel(
                "First response in business hours today, p90",
                "stat",
                [("{{team}}", quantile(0.9, "leadpulse_first_response_business_seconds", "team", **DAY))],
                unit="s",
            ),
            Panel(
                "First responses by source today",
                "bargauge",
                [
                    (
                        "{{source}}",
                        f"sum by (source) ({sel('leadpulse_first_response_by_source_seconds_count', period='day')})",
                    )
                ],
            ),
            Panel(
                "Activity today against target, by rep",
                "bargauge",
                [
                    (
                        "{{rep}} {{activity}}",
                        f"sum by (rep, activity) ({sel('leadpulse_activities', period='day', activity=CALLS_EMAILS)})"
                        " / on (rep, activity)"
                        f" sum by (rep, activity) ({sel('leadpulse_activity_target', period='day')})",
                    )
                ],
                unit="percentunit",
            ),
            Panel(
                "Calls per minute by outcome",
                "timeseries",
                [("{{outcome}}", f"sum by (outcome) (rate({sel('leadpulse_calls_total')}[5m])) * 60")],
            ),
            Panel(
                "Emails per minute by action",
                "timeseries",
                [("{{action}}", f"sum by (action) (rate({sel('leadpulse_emails_total')}[5m])) * 60")],
            ),
            Panel(
                "Meetings in the last hour",
                "bargauge",
                [("{{action}}", f"sum by (action) (increase({sel('leadpulse_meetings_total')}[1h]))")],
            ),
        ],
    ),
    Row(
        "Pipeline and revenue",
        [
            Panel(
                "Open pipeline by stage",
                "bargauge",
                [("{{stage}}", f"sum by (stage) ({sel('leadpulse_pipeline_deals')})")],
            ),
            Panel(
                "Open pipeline amount by stage",
                "bargauge",
                [("{{stage}} {{currency}}", f"sum by (stage, currency) ({sel('leadpulse_pipeline_amount')})")],
            ),
            Panel(
                "Win rate this month",
                "stat",
                [("{{team}}", 'team:leadpulse_win_rate:ratio{period="month",team=~"$team"}')],
                unit="percentunit",
            ),
            Panel(
                "Won and lost today",
                "stat",
                [
                    ("won", f"sum({sel('leadpulse_deals_won', **DAY)})"),
                    ("lost", f"sum({sel('leadpulse_deals_lost', **DAY)})"),
                ],
            ),
            Panel(
                "Lead to SQL conversion this week",
                "stat",
                [("{{team}}", 'team:leadpulse_lead_to_sql_conversion:ratio{period="week",team=~"$team"}')],
                unit="percentunit",
            ),
            Panel(
                "Sales cycle this month, median",
                "stat",
                [("{{team}}", quantile(0.5, "leadpulse_sales_cycle_seconds", "team", **MONTH))],
                unit="s",
            ),
            Panel(
                "Quota attainment this month, by rep",
                "bargauge",
                [
                    (
                        "{{rep}} {{currency}}",
                        f'rep:leadpulse_quota_attainment:ratio{{rep=~"$rep"}} and on (rep) {QUOTAS}',
                    )
                ],
                unit="percentunit",
            ),
            Panel(
                "Pipeline coverage of the remaining quota, by rep",
                "bargauge",
                [
                    (
                        "{{rep}} {{currency}}",
                        f'rep:leadpulse_pipeline_coverage:ratio{{rep=~"$rep"}} and on (rep) {QUOTAS}',
                    )
                ],
            ),
            Panel(
                "Won this month by deal type",
                "bargauge",
                [
                    (
                        "{{deal_type}} {{currency}}",
                        f"sum by (deal_type, currency) ({sel('leadpulse_won_amount_by_deal_type', **MONTH)})",
                    )
                ],
            ),
            Panel(
                "Won this month by rep",
                "bargauge",
                [("{{rep}} {{currency}}", f"sum by (rep, currency) ({sel('leadpulse_won_amount', **MONTH)})")],
            ),
            Panel(
                "Average deal size this month",
                "stat",
                [("{{team}} {{currency}}", 'team:leadpulse_average_deal_size:ratio{period="month",team=~"$team"}')],
            ),
            Panel(
                "Lost this month by reason",
                "bargauge",
                [("{{reason}}", f"sum by (reason) ({sel('leadpulse_deals_lost_by_reason', **MONTH)})")],
            ),
            Panel(
                "Time in stage this month, median",
                "bargauge",
                [("{{stage}}", quantile(0.5, "leadpulse_stage_dwell_seconds", "stage", **MONTH))],
                unit="s",
            ),
            Panel(
                "Open deals past their expected close date",
                "stat",
                [("{{team}}", f"sum by (team) ({sel('leadpulse_deals_slipped')})")],
            ),
        ],
    ),
    Row(
        "Quarter: will we make it?",
        [
            Panel(
                "Won this quarter against quota, by rep",
                "bargauge",
                [
                    (
                        "{{rep}} {{currency}}",
                        f'rep:leadpulse_period_quota_attainment:ratio{{period="quarter",rep=~"$rep"}}'
                        f" and on (rep) {QUOTAS}",
                    )
                ],
                unit="percentunit",
            ),
            Panel(
                "Forecast this quarter against quota, by team",
                "bargauge",
                [
                    (
                        "{{team}} {{currency}}",
                        'team:leadpulse_revenue_forecast:amount{period="quarter",team=~"$team"}'
                        " / on (team, period, currency)"
                        ' team:leadpulse_period_quota:amount{period="quarter"}',
                    )
                ],
                unit="percentunit",
            ),
            Panel(
                "Pipeline coverage of the quarter's remaining quota, by rep",
                "bargauge",
                [
                    (
                        "{{rep}} {{currency}}",
                        f'rep:leadpulse_period_pipeline_coverage:ratio{{period="quarter",rep=~"$rep"}}'
                        f" and on (rep) {QUOTAS}",
                    )
                ],
            ),
            Panel(
                "Weighted pipeline by stage",
                "bargauge",
                [
                    (
                        "{{stage}} {{currency}}",
                        f"sum by (stage, currency) ({sel('leadpulse_weighted_pipeline_amount')})",
                    )
                ],
            ),
        ],
    ),
    Row(
        "Engine",
        [
            Panel("Workers up", "stat", [("up", 'sum(up{job="leadpulse"})')]),
            Panel(
                "Events processed per second",
                "timeseries",
                [
                    ("{{topic}}", f"sum by (topic) (rate({sel('leadpulse_events_processed_total')}[5m]))"),
                ],
            ),
            Panel(
                "Rejected input in the last hour",
                "table",
                [
                    (
                        "{{topic}} {{reason}}",
                        f"sum by (topic, reason) (increase({sel('leadpulse_events_rejected_total')}[1h]))",
                    ),
                ],
            ),
            Panel(
                "Event-time lag by topic",
                "timeseries",
                [("{{topic}}", f"max by (topic) ({sel('leadpulse_event_time_lag_seconds')})")],
                unit="s",
            ),
            Panel(
                "Scrape duration per worker",
                "timeseries",
                [("{{instance}}", 'scrape_duration_seconds{job="leadpulse"}')],
                unit="s",
            ),
            Panel("Series per worker", "stat", [("{{instance}}", 'scrape_samples_scraped{job="leadpulse"}')]),
            Panel("Deal records held", "stat", [("{{table}}", f"sum by (table) ({sel('leadpulse_table_keys')})")]),
        ],
    ),
]


def variables() -> list[dict[str, Any]]:
    def variable(name: str, query: str) -> dict[str, Any]:
        return {
            "name": name,
            "type": "query",
            "datasource": DATASOURCE,
            "query": query,
            "includeAll": True,
            "multi": True,
            "allValue": ".*",
            "current": {"text": "All", "value": "$__all"},
            "refresh": 2,
            "sort": 1,
        }

    return [
        variable("team", "label_values(leadpulse_rep_working, team)"),
        variable("rep", 'label_values(leadpulse_rep_working{team=~"$team"}, rep)'),
    ]


def panels() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    y = 0
    next_id = 1
    for row in ROWS:
        out.append(
            {
                "id": next_id,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        next_id += 1
        y += 1
        x = 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y = 0, y + panel.height
            out.append(
                {
                    "id": next_id,
                    "title": panel.title,
                    "type": panel.kind,
                    "datasource": DATASOURCE,
                    "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
                    "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                    "options": panel.options,
                    "targets": [
                        {"refId": chr(ord("A") + index), "expr": expr, "legendFormat": legend, "datasource": DATASOURCE}
                        for index, (legend, expr) in enumerate(panel.queries)
                    ],
                }
            )
            next_id += 1
            x += panel.width
        y += max(panel.height for panel in row.panels)
    return out


def dashboard() -> dict[str, Any]:
    return {
        "uid": "leadpulse",
        "title": "LeadPulse: sales floor, pipeline and engine",
        "schemaVersion": 39,
        "version": 2,
        "editable": True,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "tags": ["leadpulse"],
        "templating": {"list": variables()},
        "panels": panels(),
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT}")
