"""The catalog's ratios and the response percentiles of a rendered report, each next to its parts.

A service reading the API should not recompute a win rate or a p90 itself: these are the figures
the recording rules compute in Prometheus (``deploy/prometheus/rules``), from the same parts, for one
rep or team and one period. A ratio whose denominator is 0 is ``None`` (nothing to divide), and a
percentile of no observations is ``None``. Percentiles interpolate within the bucket as Prometheus'
``histogram_quantile`` does, from the same buckets, so the API and the board agree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from streams.fold.periods import PeriodKind

Rows = list[dict[str, Any]]
QUANTILES = {"p50": 0.5, "p90": 0.9}
PERCENTILE_FAMILIES = (
    "leadpulse_first_response_seconds",
    "leadpulse_first_response_business_seconds",
    "leadpulse_re_response_seconds",
    "leadpulse_sales_cycle_seconds",
)
QUOTA_MONTHS = {PeriodKind.MONTH: 1, PeriodKind.QUARTER: 3, PeriodKind.YEAR: 12}  # SPEC §3: the period's quota
COVERED = (PeriodKind.MONTH, PeriodKind.QUARTER)  # pipeline coverage's periods


def total(rows: Rows, **labels: str) -> float:
    """The sum of the rows' values whose labels match ``labels``."""
    return sum(row["value"] for row in rows if all(row["labels"].get(k) == v for k, v in labels.items()))


def by(rows: Rows, label: str) -> dict[str, float]:
    """The rows' values summed by one label."""
    out: dict[str, float] = defaultdict(float)
    for row in rows:
        out[row["labels"][label]] += row["value"]
    return dict(out)


def ratio(numerator: float, denominator: float, **labels: str) -> dict[str, Any]:
    return {
        "labels": labels,
        "value": numerator / denominator if denominator else None,
        "numerator": numerator,
        "denominator": denominator,
    }


def ratios(metrics: Mapping[str, Rows], period: PeriodKind) -> dict[str, list[dict[str, Any]]]:
    """The catalog's ratios (SPEC §3) for the report's period, by name, each with its parts."""
    m: Callable[[str], Rows] = lambda name: metrics.get(f"leadpulse_{name}", [])  # noqa: E731
    won, lost, created = total(m("deals_won")), total(m("deals_lost")), total(m("leads_created"))
    outcomes = m("activity_outcomes")
    closed_after = m("deals_closed_after_proposal")
    out: dict[str, list[dict[str, Any]]] = {
        "win_rate": [ratio(won, won + lost)],
        "lead_to_sql_conversion": [ratio(total(m("leads_qualified")), created)],
        "lost_opportunity_ratio": [ratio(lost, created)],
        "connect_rate": [
            ratio(total(outcomes, activity="calls_connected"), total(outcomes, activity="calls_outbound"))
        ],
        "average_handle_seconds": [ratio(total(m("call_handle_seconds")), total(outcomes, activity="calls_handled"))],
        "personalization_ratio": [
            ratio(total(outcomes, activity="emails_personalized"), total(outcomes, activity="emails_sent"))
        ],
        "bounce_rate": [ratio(total(outcomes, activity="emails_bounced"), total(outcomes, activity="emails_sent"))],
        "proposal_success": [ratio(total(closed_after, outcome="won"), total(closed_after))],
    }
    won_amount = by(m("won_amount"), "currency")
    won_deals = by(m("deals_won_by_deal_type"), "currency")
    previous = by(m("won_amount_previous_period"), "currency")
    currencies = sorted(set(won_amount) | set(previous))
    out["average_deal_size"] = [ratio(won_amount.get(c, 0.0), won_deals.get(c, 0.0), currency=c) for c in currencies]
    out["revenue_growth"] = [ratio(won_amount.get(c, 0.0), previous.get(c, 0.0), currency=c) for c in currencies]
    if period in QUOTA_MONTHS:
        quota = {c: q * QUOTA_MONTHS[period] for c, q in by(m("monthly_quota"), "currency").items()}
        out["quota_attainment"] = [ratio(won_amount.get(c, 0.0), q, currency=c) for c, q in sorted(quota.items())]
        # The revenue forecast (won so far + the weighted open amount expected to close in the period)
        # against the same quota: "will we make it?".
        open_weighted = by(m("forecast_weighted_amount"), "currency")
        out["forecast_attainment"] = [
            ratio(won_amount.get(c, 0.0) + open_weighted.get(c, 0.0), q, currency=c) for c, q in sorted(quota.items())
        ]
        if period in COVERED:
            pipeline = by(m("pipeline_amount"), "currency")
            out["pipeline_coverage"] = [
                ratio(pipeline.get(c, 0.0), max(q - won_amount.get(c, 0.0), 0.0), currency=c)
                for c, q in sorted(quota.items())
            ]
    return out


def histogram_quantile(quantile: float, buckets: Mapping[str, int]) -> float | None:
    """Prometheus' ``histogram_quantile`` over one histogram's cumulative buckets ("+Inf" last):
    linear within the bucket holding the rank, the lowest bucket starting at 0, and the highest
    finite bound when the rank falls in the +Inf bucket."""
    bounds = [(float(bound), count) for bound, count in buckets.items()]
    observations = bounds[-1][1] if bounds else 0
    if not observations:
        return None
    rank = quantile * observations
    lower, below = 0.0, 0
    for bound, count in bounds:
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / (count - below) if count > below else lower
        lower, below = bound, count
    return lower


def percentiles(metrics: Mapping[str, Rows]) -> dict[str, list[dict[str, Any]]]:
    """p50 and p90 of each response and cycle histogram, per row (its labels), with its count and sum."""
    out: dict[str, list[dict[str, Any]]] = {}
    for family in PERCENTILE_FAMILIES:
        out[family] = [
            {
                "labels": row["labels"],
                **{name: histogram_quantile(q, row["buckets"]) for name, q in QUANTILES.items()},
                "count": row["count"],
                "sum": row["sum"],
            }
            for row in metrics.get(family, [])
        ]
    return out
