"""Fiscal quarters and years (SPEC §2): a fiscal year starting in April, a reporting timezone with
DST (Berlin), closes at the boundaries, reports and /metrics for quarters and years, a quarter and
a year equal to the sum of their months, and the months kept for them.

Expected values are written out from the scenario: each close's local time and fiscal period are
worked out by hand in the comments."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from streams.config import Retention
from streams.fold.contributions import Family, FoldContext
from streams.fold.periods import Calendar, PeriodKind
from streams.metrics.figures import FigureReader
from streams.metrics.labels import SourceLabels
from streams.metrics.report import Report, build_report, reported_specs
from streams.metrics.spec import Scope
from streams.state.rollups import PartitionRollup, Rollups
from tests.test_processor_and_collector import Harness, stage

APRIL_BERLIN = Calendar("Europe/Berlin", fiscal_year_start_month=4)


def at(utc: str) -> float:
    return datetime.fromisoformat(utc).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("utc", "quarter", "year"),
    [
        # Berlin moved to summer time on 2024-03-31: 21:30 UTC is 23:30 local, still March (fiscal Q4)
        ("2024-03-31T21:30", "2024-01-01", "2023-04-01"),
        ("2024-03-31T22:30", "2024-04-01", "2024-04-01"),  # 00:30 on 1 April local: a new fiscal year
        ("2023-12-31T22:59", "2023-10-01", "2023-04-01"),  # 23:59 local, winter time
        ("2023-12-31T23:00", "2024-01-01", "2023-04-01"),  # midnight local: Q4 begins, same fiscal year
        ("2024-10-27T00:30", "2024-10-01", "2024-04-01"),  # the night summer time ends
        ("2025-03-31T21:59", "2025-01-01", "2024-04-01"),
    ],
)
def test_quarters_and_years_follow_the_fiscal_calendar_in_local_time(utc: str, quarter: str, year: str) -> None:
    moment = at(utc)
    assert APRIL_BERLIN.period_of(PeriodKind.QUARTER, moment) == (PeriodKind.QUARTER, quarter)
    assert APRIL_BERLIN.period_of(PeriodKind.YEAR, moment) == (PeriodKind.YEAR, year)
    assert APRIL_BERLIN.start_of((PeriodKind.QUARTER, quarter)).timestamp() <= moment


def test_a_calendar_year_by_default() -> None:
    utc = Calendar("UTC")
    assert utc.period_of(PeriodKind.QUARTER, at("2024-05-17T10:00")) == (PeriodKind.QUARTER, "2024-04-01")
    assert utc.period_of(PeriodKind.YEAR, at("2024-05-17T10:00")) == (PeriodKind.YEAR, "2024-01-01")
    assert utc.previous((PeriodKind.QUARTER, "2024-01-01")) == (PeriodKind.QUARTER, "2023-10-01")
    assert utc.months_of((PeriodKind.YEAR, "2024-01-01"))[-1] == (PeriodKind.MONTH, "2024-12")


# Won deals and when they closed (UTC), with their fiscal quarter by hand (April start, Berlin):
CLOSES = [
    ("d1", "ann", "2023-04-30T22:30", 100),  # 1 May 00:30 local: Q1 2023-04-01, year 2023-04-01
    ("d2", "ann", "2023-12-31T23:30", 200),  # 1 Jan 2024 00:30 local: Q4 2024-01-01, year 2023-04-01
    ("d3", "bob", "2024-03-31T21:30", 400),  # 31 Mar 23:30 local (summer time): Q4 2024-01-01, year 2023-04-01
    ("d4", "ann", "2024-03-31T22:30", 800),  # 1 Apr 00:30 local: Q1 2024-04-01, year 2024-04-01
    ("d5", "bob", "2024-04-10T09:00", 1600),  # Q1 2024-04-01, year 2024-04-01
]
NOW_APRIL = at("2024-04-15T10:00")


@pytest.fixture
def closes() -> Harness:
    harness = Harness(APRIL_BERLIN, NOW_APRIL)
    for deal, rep, closed, amount in CLOSES:
        created = at(closed) - 86400
        harness.deals_in(
            harness.message("crm.deal-stages", 0, deal, stage(deal, rep, created, "new", f"{deal}-1", team="emea")),
            harness.message(
                "crm.deal-stages",
                0,
                deal,
                stage(deal, rep, at(closed), "won", f"{deal}-2", team="emea", amount=str(amount), currency="EUR"),
            ),
        )
    return harness


def team_report(harness: Harness, period: tuple) -> dict:
    harness.profile_sync()
    reader = FigureReader(harness.rollups, harness.directory, {0, 1}, harness.now, SourceLabels(), {})
    return build_report(reader, "team", "emea", period).parts


def won(parts: dict) -> tuple[float, float]:
    deals = sum(acc[0] for acc in parts["leadpulse_deals_won"].values())
    amount = sum(acc[0] for acc in parts["leadpulse_won_amount"].values()) / 1_000_000  # micro-units
    return deals, amount


def test_reports_for_fiscal_quarters_and_years(closes: Harness) -> None:
    assert won(team_report(closes, (PeriodKind.QUARTER, "2023-04-01"))) == (1, 100)
    assert won(team_report(closes, (PeriodKind.QUARTER, "2024-01-01"))) == (2, 600)
    assert won(team_report(closes, (PeriodKind.QUARTER, "2024-04-01"))) == (2, 2400)
    assert won(team_report(closes, (PeriodKind.YEAR, "2023-04-01"))) == (3, 700)
    assert won(team_report(closes, (PeriodKind.YEAR, "2024-04-01"))) == (2, 2400)
    growth = team_report(closes, (PeriodKind.QUARTER, "2024-04-01"))["leadpulse_won_amount_previous_period"]
    assert sum(acc[0] for acc in growth.values()) / 1_000_000 == 600  # the quarter before: Jan-Mar 2024


def test_metrics_carry_the_current_quarter_and_year_for_won_and_lost(closes: Harness) -> None:
    assert closes.value("leadpulse_deals_won", rep="ann", team="emea", period="quarter") == 1
    assert closes.value("leadpulse_deals_won", rep="bob", team="emea", period="quarter") == 1
    assert closes.value("leadpulse_won_amount", rep="bob", team="emea", period="year", currency="EUR") == 1600
    assert closes.value("leadpulse_won_amount", rep="ann", team="emea", period="month", currency="EUR") == 800
    assert closes.value("leadpulse_first_response_seconds_count", rep="ann", team="emea", period="quarter") is None


# Open deals on 15 April 2024 (fiscal Q1 is April-June, the fiscal year April 2024-March 2025):
OPEN = [
    ("e1", "proposal", 1000, "2024-04-30"),  # this month, quarter and year: 1000 x 0.50
    ("e2", "negotiation", 2000, "2024-06-15"),  # this quarter and year: 2000 x 0.75
    ("e3", "new", 4000, "2025-02-01"),  # this fiscal year only: 4000 x 0.05
    ("e4", "qualified", 8000, "2024-03-31"),  # slipped: last fiscal year
]


def test_the_forecast_counts_open_deals_expected_to_close_in_the_period(closes: Harness) -> None:
    for deal, stage_name, amount, expected in OPEN:
        closes.deals_in(
            closes.message(
                "crm.deal-stages",
                1,
                deal,
                stage(
                    deal,
                    "ann",
                    NOW_APRIL - 3600,
                    stage_name,
                    f"{deal}-1",
                    team="emea",
                    amount=str(amount),
                    currency="EUR",
                    expected_close_date=expected,
                ),
            )
        )
    emea = {"team": "emea", "currency": "EUR"}
    assert closes.value("leadpulse_forecast_weighted_amount", period="month", **emea) == 500
    assert closes.value("leadpulse_forecast_weighted_amount", period="quarter", **emea) == 2000
    assert closes.value("leadpulse_forecast_weighted_amount", period="year", **emea) == 2200
    # Its other part, won so far: 800 on 1 April (local) and 1,600 on 10 April
    assert closes.value("leadpulse_won_amount", rep="ann", team="emea", period="quarter", currency="EUR") == 800
    parts = team_report(closes, (PeriodKind.QUARTER, "2024-04-01"))["leadpulse_forecast_weighted_amount"]
    assert parts == {("EUR",): [2000 * 1_000_000]}
    last_year = team_report(closes, (PeriodKind.YEAR, "2023-04-01"))["leadpulse_forecast_weighted_amount"]
    assert last_year == {("EUR",): [8000 * 0.20 * 1_000_000]}  # the slipped deal, under its expected month


def test_a_quarter_and_a_year_are_the_sum_of_their_months() -> None:
    """Every period family of a report: the quarter's (and the year's) parts equal the sum of its
    months' parts, over random deals, activities and closes across two fiscal years."""
    rng = random.Random(7)
    harness = Harness(APRIL_BERLIN, at("2025-03-20T12:00"))
    start, end = at("2023-04-01T00:00"), at("2025-03-20T00:00")
    for number in range(300):
        deal, rep = f"d{number}", rng.choice(["ann", "bob", "cat"])
        created = rng.uniform(start, end - 86400 * 20)
        messages = [
            harness.message(
                "crm.deal-stages", number % 2, deal, stage(deal, rep, created, "new", f"{deal}-s", team="emea")
            )
        ]
        touched = created + rng.uniform(30, 86400 * 3)
        messages.append(
            harness.message(
                "crm.calls",
                number % 2,
                deal,
                {
                    "event_id": f"{deal}-c",
                    "occurred_at": datetime.fromtimestamp(touched, UTC).isoformat(),
                    "deal_id": deal,
                    "rep_id": rep,
                    "call_id": f"{deal}-c",
                    "direction": "outbound",
                    "outcome": rng.choice(["connected", "no_answer"]),
                    "talk_seconds": 60,
                },
            )
        )
        if rng.random() < 0.6:
            closed = touched + rng.uniform(3600, 86400 * 15)
            outcome = rng.choice(["won", "lost"])
            extra = {"amount": str(rng.randint(1, 50) * 100), "currency": "EUR"} if outcome == "won" else {}
            messages.append(
                harness.message(
                    "crm.deal-stages",
                    number % 2,
                    deal,
                    stage(deal, rep, closed, outcome, f"{deal}-w", team="emea", **extra),
                )
            )
        harness.deals_in(*messages)
    period_specs = [spec.name for spec in reported_specs() if spec.sources and spec.scope is Scope.PERIOD]
    for kind, label in (
        (PeriodKind.QUARTER, "2023-10-01"),
        (PeriodKind.QUARTER, "2024-07-01"),
        (PeriodKind.YEAR, "2023-04-01"),
    ):
        whole = team_report(harness, (kind, label))
        months = [team_report(harness, month) for month in APRIL_BERLIN.months_of((kind, label))]
        summed = Report("team", "emea", (kind, label), months[0])
        for month in months[1:]:
            summed = summed.merge(Report("team", "emea", (kind, label), month))
        for name in period_specs:
            assert whole[name] == summed.parts[name], (kind, label, name)
        assert won(whole)[0] > 0


def test_months_are_kept_for_five_quarters_and_two_fiscal_years() -> None:
    """The aggregates hold months only; pruning keeps every month a kept quarter or year reads."""
    retention = Retention()
    rollups = Rollups(FoldContext(APRIL_BERLIN), retention.by_kind())
    rollup = rollups._partitions.setdefault(0, PartitionRollup())
    months = [(PeriodKind.MONTH, f"{year}-{month:02d}") for year in (2022, 2023, 2024, 2025) for month in range(1, 13)]
    for month in months:
        rollup.add_cell(month, Family.WON, ("ann", "emea"), 1, 0)
    rollups.prune(at("2025-03-10T12:00"))
    kept = sorted(label for (_kind, label) in rollup.sums)
    # In March 2025: 14 months back is January 2024, this quarter and the four before reach back to
    # January 2024, but this fiscal year (from 2024-04-01) and the one before start in April 2023.
    assert kept[0] == "2023-04" and kept[-1] == "2025-12"
    assert (retention.quarters + 1, retention.years + 1) == (5, 2)  # in all, the current one included
