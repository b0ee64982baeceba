"""/metrics is written by LeadPulse's own text writer: it must say what prometheus-client would.

Both renderings of the same collector are parsed with prometheus-client's parser and compared
sample by sample (names, labels, values, types, help), on the catalog's hand scenario plus rep
and team names that need escaping, and again after the data changed (label texts are kept
between scrapes: a series that went away must go, a changed value must show).
"""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.test_catalog import activity
from tests.test_catalog import scenario as catalog_scenario
from tests.test_processor_and_collector import NOW, Harness, call, stage

ODD_REP = 'o"dd\\rep\nname'  # a quote, a backslash and a newline: all three need escaping
ODD_TEAM = "tëam \\ ü"


def parsed(text: str) -> dict[str, tuple[str, str, set[tuple[str, tuple, float]]]]:
    """family name -> (type, help, samples as (name, sorted labels, value))."""
    return {
        family.name: (
            family.type,
            family.documentation,
            {(s.name, tuple(sorted(s.labels.items())), s.value) for s in family.samples},
        )
        for family in text_string_to_metric_families(text)
    }


def assert_same_as_prometheus_client(harness: Harness) -> dict:
    harness.profile_sync()
    ours = parsed(harness.collector.exposition().decode())
    theirs = parsed(generate_latest(harness.registry).decode())
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert ours[name] == theirs[name], name
    return ours


def with_odd_names(harness: Harness) -> Harness:
    m = harness.message
    harness.deals_in(
        m("crm.deal-stages", 1, "z", stage("z", ODD_REP, NOW - 700, "new", "z1", source="event", team=ODD_TEAM)),
        m("crm.calls", 1, "z", {**call("z", ODD_REP, NOW - 100, "z2"), "team": ODD_TEAM}),
        m("crm.emails", 1, "z", activity("crm.emails", "z", ODD_REP, NOW - 50, "z3", action="sent", team=ODD_TEAM)),
    )
    return harness


def test_the_text_writer_says_what_prometheus_client_says() -> None:
    harness = with_odd_names(catalog_scenario.__wrapped__())  # type: ignore[attr-defined]
    families = assert_same_as_prometheus_client(harness)
    calls = families["leadpulse_calls"][2]
    odd = (("direction", "outbound"), ("outcome", "connected"), ("rep", ODD_REP), ("team", ODD_TEAM))
    assert ("leadpulse_calls_total", odd, 1.0) in calls
    histogram = families["leadpulse_first_response_seconds"]
    assert histogram[0] == "histogram"
    day = (("period", "day"), ("rep", ODD_REP), ("team", ODD_TEAM))
    assert ("leadpulse_first_response_seconds_count", day, 1.0) in histogram[2]
    assert ("leadpulse_first_response_seconds_sum", day, 600.0) in histogram[2]


def test_kept_label_texts_never_keep_a_series_that_went_away() -> None:
    harness = with_odd_names(Harness())
    m = harness.message
    harness.deals_in(m("crm.deal-stages", 0, "q", stage("q", "ann", NOW - 300, "qualified", "q1", amount=10)))
    first = assert_same_as_prometheus_client(harness)
    qualified = (("rep", "ann"), ("stage", "qualified"), ("team", "unassigned"))
    assert ("leadpulse_pipeline_deals", qualified, 1.0) in first["leadpulse_pipeline_deals"][2]
    harness.deals_in(m("crm.deal-stages", 0, "q", stage("q", "ann", NOW - 200, "proposal", "q2")))
    second = assert_same_as_prometheus_client(harness)
    pipeline = {labels: value for _, labels, value in second["leadpulse_pipeline_deals"][2]}
    assert qualified not in pipeline
    assert pipeline[(("rep", "ann"), ("stage", "proposal"), ("team", "unassigned"))] == 1.0
