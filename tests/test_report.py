"""Reports for one rep or team and any kept period: the same figures /metrics exports, mergeable
across workers."""

from __future__ import annotations

from collections import defaultdict

import pytest

from streams.fold.periods import PeriodKind
from streams.metrics import catalog
from streams.metrics.figures import FigureReader
from streams.metrics.labels import SourceLabels
from streams.metrics.report import Report, build_report, labels_kept, render, reported_specs
from tests.test_catalog import scenario  # noqa: F401 - the fixture
from tests.test_processor_and_collector import NOW, Harness

TODAY = (PeriodKind.DAY, "2024-03-05")
YESTERDAY = (PeriodKind.DAY, "2024-03-04")


def reader(harness: Harness, partitions: set[int]) -> FigureReader:
    harness.profile_sync()
    return FigureReader(harness.rollups, harness.directory, partitions, NOW, SourceLabels(), {})


def figures(harness: Harness, subject: str, name: str, period: tuple = TODAY) -> dict:
    return render(build_report(reader(harness, {0, 1}), subject, name, period))  # type: ignore[arg-type]


def value(rows: list[dict], **labels: str) -> object:
    (row,) = [row for row in rows if all(row["labels"][key] == wanted for key, wanted in labels.items())]
    return row.get("value", row)


def test_a_rep_today(scenario: Harness) -> None:  # noqa: F811
    ann = figures(scenario, "rep", "ann")
    assert value(ann["leadpulse_activities"], activity="calls") == 2
    response = value(ann["leadpulse_first_response_seconds"])
    assert (response["count"], response["sum"], response["buckets"]["60"], response["buckets"]["300"]) == (1, 100, 0, 1)
    assert value(ann["leadpulse_re_response_seconds"])["sum"] == 600  # ann owned the deal at the touch
    assert value(ann["leadpulse_deals_lost_by_reason"], reason="price") == 1
    assert value(ann["leadpulse_activity_target"], activity="calls", period="day") == 40
    assert value(ann["leadpulse_leads_awaiting_response"]) == 0
    bob = figures(scenario, "rep", "bob")
    assert value(bob["leadpulse_won_amount"], currency="EUR") == 5000
    assert value(bob["leadpulse_monthly_quota"], currency="EUR") == 10000
    assert value(bob["leadpulse_deals_slipped"]) == 1 and value(bob["leadpulse_leads_awaiting_response"]) == 1
    assert value(bob["leadpulse_won_amount_previous_period"], currency="USD") == 300


def test_a_team_on_a_past_day(scenario: Harness) -> None:  # noqa: F811
    yesterday = figures(scenario, "team", "emea", YESTERDAY)
    assert value(yesterday["leadpulse_deals_won"]) == 1
    assert value(yesterday["leadpulse_won_amount"], currency="USD") == 300
    assert value(yesterday["leadpulse_sales_cycle_seconds"])["sum"] == 100
    assert yesterday["leadpulse_activities"] == []
    today = figures(scenario, "team", "emea")
    assert value(today["leadpulse_leads_created"], source="inbound_demo") == 1
    assert value(today["leadpulse_first_response_by_source_seconds"], source="inbound_demo")["count"] == 1
    assert value(today["leadpulse_monthly_quota"], currency="EUR") == 10000  # bob's, in the team now


def test_the_current_period_agrees_with_metrics(scenario: Harness) -> None:  # noqa: F811
    """Summing /metrics' series of a rep over the labels a report drops gives the report's figures."""
    report = build_report(reader(scenario, {0, 1}), "rep", "ann", TODAY)
    scenario.profile_sync()
    exported: dict = defaultdict(float)
    for family in scenario.registry.collect():
        for sample in family.samples:
            if sample.labels.get("rep") == "ann" and sample.labels.get("period", "day") == "day":
                exported[(sample.name, tuple(sorted(sample.labels.items())))] += sample.value
    for spec in reported_specs():
        if not spec.sources or spec.kind is catalog.Kind.HISTOGRAM or "rep" not in spec.labels:
            continue
        from_metrics: dict = defaultdict(float)
        for (name, labels), sample_value in exported.items():
            if name in spec.exposed_names:
                kept = dict(labels)
                from_metrics[tuple(kept[label] for label in labels_kept(spec))] += sample_value
        rows = render(report)[spec.name]
        rendered = {tuple(row["labels"][label] for label in labels_kept(spec)): row["value"] for row in rows}
        assert rendered == pytest.approx(dict(from_metrics)), spec.name


def test_parts_of_two_workers_merge_into_the_whole(scenario: Harness) -> None:  # noqa: F811
    for subject, name in (("rep", "bob"), ("team", "emea")):
        whole = build_report(reader(scenario, {0, 1}), subject, name, TODAY)  # type: ignore[arg-type]
        first = build_report(reader(scenario, {0}), subject, name, TODAY)  # type: ignore[arg-type]
        second = Report.from_json(build_report(reader(scenario, {1}), subject, name, TODAY).to_json())  # type: ignore[arg-type]
        assert render(first.merge(second)) == render(whole)


def test_percentiles_interpolate_in_the_buckets_as_histogram_quantile_does() -> None:
    """Worked out by hand from Prometheus' rule: linear inside the bucket that holds the rank, the
    first bucket starting at 0, the highest finite bound when the rank falls in +Inf."""
    from streams.metrics.derived import histogram_quantile

    buckets = {"60": 2, "300": 6, "900": 8, "+Inf": 10}  # cumulative
    assert histogram_quantile(0.1, buckets) == 30  # rank 1 of the first 2 in (0, 60]
    assert histogram_quantile(0.5, buckets) == 60 + 240 * (5 - 2) / 4  # rank 5: the 3rd of 4 in (60, 300]
    assert histogram_quantile(0.8, buckets) == 900  # rank 8: the top of (300, 900]
    assert histogram_quantile(0.9, buckets) == 900  # rank 9 falls in +Inf: the highest finite bound
    assert histogram_quantile(0.5, {"60": 0, "+Inf": 0}) is None
