"""Every catalog item beyond the must-exist table, on a hand-computed scenario.

NOW is Tuesday 2024-03-05 12:30 UTC (reporting timezone UTC), so everything below from 12:00 on
falls in every current period (hour, day, week of 4 March, March). Expected values are written
out by hand from SPEC §2-§3, not computed by the engine's code.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_processor_and_collector import NOW, Harness, call, stage

PERIODS = ("hour", "day", "week", "month")
DEAL_PERIODS = ("day", "week", "month")  # slow figures skip the hour (the series budget)


def at(offset: float) -> float:
    return NOW + offset


def activity(topic: str, deal: str, rep: str, when: float, event_id: str, **fields: object) -> dict:
    iso = datetime.fromtimestamp(when, UTC).isoformat()
    key = {"crm.calls": "call_id", "crm.emails": "email_id", "crm.meetings": "meeting_id"}[topic]
    return {"event_id": event_id, "occurred_at": iso, "deal_id": deal, "rep_id": rep, key: event_id, **fields}


@pytest.fixture
def scenario() -> Harness:
    harness = Harness()
    ann = {
        "rep_id": "ann",
        "team": "emea",
        "role": "sdr",
        "updated_at": "2024-03-01T00:00:00Z",
        "targets": {"calls_per_day": 40, "emails_per_day": 50, "meetings_per_week": 5},
    }
    bob = {
        "rep_id": "bob",
        "team": "emea",
        "role": "ae",
        "updated_at": "2024-03-01T00:00:00Z",
        "monthly_quota": "10000",
        "currency": "EUR",
    }
    harness.reps_in(harness.message("crm.reps", 0, "ann", ann), harness.message("crm.reps", 0, "bob", bob))
    m = harness.message
    inbound = {"direction": "inbound", "outcome": "connected", "talk_seconds": 120}
    harness.deals_in(
        # Deal a: answered in 100 s, a re-response of 600 s, qualified, proposal, won as an upsell.
        m("crm.deal-stages", 0, "a", stage("a", "ann", at(-1800), "new", "a1", source="inbound_demo")),
        m("crm.calls", 0, "a", {**call("a", "ann", at(-1700), "a2"), "wrap_up_seconds": 30}),
        m("crm.calls", 0, "a", activity("crm.calls", "a", "ann", at(-1600), "a3", **inbound)),
        m("crm.emails", 0, "a", activity("crm.emails", "a", "ann", at(-1500), "a4", action="received")),
        m("crm.emails", 0, "a", activity("crm.emails", "a", "ann", at(-1000), "a5", action="sent", personalized=True)),
        m("crm.emails", 0, "a", activity("crm.emails", "a", "ann", at(-900), "a6", action="bounced")),
        m("crm.deal-stages", 0, "a", stage("a", "ann", at(-800), "qualified", "a7")),
        m(
            "crm.deal-stages",
            0,
            "a",
            stage("a", "bob", at(-700), "proposal", "a8", amount=5000, currency="EUR", deal_type="upsell"),
        ),
        m("crm.meetings", 0, "a", activity("crm.meetings", "a", "bob", at(-650), "a9", action="held")),
        m("crm.deal-stages", 0, "a", stage("a", "bob", at(-600), "won", "a10")),
        # Deal b: lost for price.
        m("crm.deal-stages", 0, "b", stage("b", "ann", at(-1200), "new", "b1", source="referral")),
        m("crm.deal-stages", 0, "b", stage("b", "ann", at(-300), "lost", "b2", lost_reason="price")),
        # Deal c: open, expected to close on 1 March: slipped.
        m(
            "crm.deal-stages",
            1,
            "c",
            stage("c", "bob", at(-100), "negotiation", "c1", amount=700, expected_close_date="2024-03-01"),
        ),
        # Deal y: won yesterday.
        m("crm.deal-stages", 1, "y", stage("y", "bob", at(-86400 - 100), "new", "y1")),
        m("crm.deal-stages", 1, "y", stage("y", "bob", at(-86400), "won", "y2", amount=300)),
    )
    return harness


def test_activity_against_targets(scenario: Harness) -> None:
    v = scenario.value
    for period in DEAL_PERIODS:
        ann = {"rep": "ann", "team": "emea", "period": period}
        assert v("leadpulse_activities", activity="calls", **ann) == 2
        assert v("leadpulse_activities", activity="emails_sent", **ann) == 1
        assert v("leadpulse_activities", activity="meetings_held", rep="bob", team="emea", period=period) == 1
        emea = {"team": "emea", "period": period}
        assert v("leadpulse_activity_outcomes", activity="calls_outbound", **emea) == 1
        assert v("leadpulse_activity_outcomes", activity="calls_connected", **emea) == 1
        assert v("leadpulse_activity_outcomes", activity="calls_handled", **emea) == 2  # the inbound one too
        assert v("leadpulse_activity_outcomes", activity="emails_sent", **emea) == 1
        assert v("leadpulse_activity_outcomes", activity="emails_personalized", **emea) == 1
        assert v("leadpulse_activity_outcomes", activity="emails_bounced", **emea) == 1
        assert v("leadpulse_call_handle_seconds", **emea) == (60 + 30) + 120
    assert v("leadpulse_activities", activity="calls", rep="ann", team="emea", period="hour") is None
    assert v("leadpulse_activity_target", rep="ann", team="emea", activity="calls", period="day") == 40
    assert v("leadpulse_activity_target", rep="ann", team="emea", activity="emails_sent", period="day") == 50
    assert v("leadpulse_activity_target", rep="ann", team="emea", activity="meetings_held", period="week") == 5
    assert v("leadpulse_activity_target", rep="bob", team="emea", activity="calls", period="day") is None


def test_leads_sqls_and_lost(scenario: Harness) -> None:
    v = scenario.value
    for period in PERIODS:
        assert v("leadpulse_leads_created", team="emea", source="inbound_demo", period=period) == 1
        assert v("leadpulse_leads_created", team="emea", source="referral", period=period) == 1
        assert v("leadpulse_leads_qualified", team="emea", source="inbound_demo", period=period) == 1
        assert v("leadpulse_leads_qualified", team="emea", source="referral", period=period) is None
    for period in DEAL_PERIODS:
        assert v("leadpulse_deals_lost_by_reason", team="emea", reason="price", period=period) == 1
        assert v("leadpulse_deals_closed_after_proposal", team="emea", outcome="won", period=period) == 1
        assert v("leadpulse_deals_closed_after_proposal", team="emea", outcome="lost", period=period) is None


def test_revenue_deal_types_growth_and_quota(scenario: Harness) -> None:
    v = scenario.value
    upsell = {"team": "emea", "deal_type": "upsell", "currency": "EUR"}
    for period in DEAL_PERIODS:
        assert v("leadpulse_deals_won_by_deal_type", period=period, **upsell) == 1
        assert v("leadpulse_won_amount_by_deal_type", period=period, **upsell) == 5000
    # Won yesterday: the previous day; this week and month already (4 March is a Monday).
    previous = {"team": "emea", "currency": "USD"}
    assert v("leadpulse_won_amount_previous_period", period="day", **previous) == 300
    assert v("leadpulse_won_amount_previous_period", period="hour", **previous) is None
    assert v("leadpulse_won_amount", period="week", rep="bob", **previous) == 300
    assert v("leadpulse_won_amount", period="day", rep="bob", **previous) is None
    assert v("leadpulse_monthly_quota", rep="bob", team="emea", currency="EUR") == 10000
    assert v("leadpulse_monthly_quota", rep="ann", team="emea", currency="USD") is None


def test_response_times(scenario: Harness) -> None:
    v = scenario.value
    # The series budget: the by-rep histogram has the day and the month, the by-source one no hour.
    for period in PERIODS:
        by_rep = {"rep": "ann", "team": "emea", "period": period}
        assert v("leadpulse_first_response_seconds_sum", **by_rep) == (100 if period in ("day", "month") else None)
        by_source = {"team": "emea", "source": "inbound_demo", "period": period}
        assert v("leadpulse_first_response_by_source_seconds_count", **by_source) == (None if period == "hour" else 1)
        by_team = {"team": "emea", "period": period}
        assert v("leadpulse_first_response_business_seconds_sum", **by_team) == 100  # 12:00 UTC: working hours
        assert v("leadpulse_first_response_business_seconds_bucket", le="300", **by_team) == 1
        if period != "hour":
            assert v("leadpulse_first_response_by_source_seconds_bucket", le="60", **by_source) == 0
            assert v("leadpulse_first_response_by_source_seconds_bucket", le="300", **by_source) == 1
        # Inbound call at -1600 (the received email at -1500 does not restart the clock), sent at -1000.
        assert v("leadpulse_re_response_seconds_sum", team="emea", period=period) == 600
        assert v("leadpulse_re_response_seconds_bucket", team="emea", period=period, le="300") == 0
        assert v("leadpulse_re_response_seconds_bucket", team="emea", period=period, le="900") == 1


def test_stages_cycle_and_slips(scenario: Harness) -> None:
    v = scenario.value
    day, month = {"team": "emea", "period": "day"}, {"team": "emea", "period": "month"}
    # Dwell and transitions are the month's in /metrics (the series budget; days and weeks in the API).
    assert v("leadpulse_stage_transitions", from_stage="new", to_stage="qualified", **month) == 1
    assert v("leadpulse_stage_transitions", from_stage="qualified", to_stage="proposal", **month) == 1
    assert v("leadpulse_stage_transitions", from_stage="proposal", to_stage="won", **month) == 1
    assert v("leadpulse_stage_transitions", from_stage="new", to_stage="lost", **month) == 1
    assert v("leadpulse_stage_transitions", from_stage="new", to_stage="lost", **day) is None
    # Deals a and b today, y yesterday (100 s in new before it was won): all this month.
    assert v("leadpulse_stage_dwell_seconds_sum", stage="new", **month) == 1000 + 900 + 100
    assert v("leadpulse_stage_dwell_seconds_count", stage="new", **month) == 3
    assert v("leadpulse_stage_dwell_seconds_sum", stage="proposal", **month) == 100
    assert v("leadpulse_stage_dwell_seconds_sum", stage="proposal", **day) is None
    assert v("leadpulse_sales_cycle_seconds_count", **day) == 1
    assert v("leadpulse_sales_cycle_seconds_sum", **day) == 1200
    assert v("leadpulse_sales_cycle_seconds_bucket", le="86400", **day) == 1
    assert v("leadpulse_sales_cycle_seconds_count", team="emea", period="week") == 2  # with yesterday's (100 s)
    assert v("leadpulse_deals_slipped", rep="bob", team="emea") == 1
    assert v("leadpulse_slipped_amount", rep="bob", team="emea", currency="USD") == 700


def test_engine_health(scenario: Harness) -> None:
    v = scenario.value
    assert v("leadpulse_last_event_timestamp_seconds", topic="crm.deal-stages") == at(-100)
    assert v("leadpulse_event_time_lag_seconds", topic="crm.deal-stages") == 100
    assert v("leadpulse_last_event_timestamp_seconds", topic="crm.meetings") == at(-650)
    assert v("leadpulse_table_keys", table="rep_profiles_v2") == 2


def test_lost_reasons_beyond_the_twenty_most_frequent_are_other() -> None:
    harness = Harness()
    messages = []
    for number in range(22):  # reason r00 twice, r01..r21 once: r20 and r21 fall out by name
        reason = f"r{min(number, 21):02d}" if number else "r00"
        deal = f"lost{number}"
        messages.append(harness.message("crm.deal-stages", 0, deal, stage(deal, "ann", at(-60), "new", f"{deal}-1")))
        messages.append(
            harness.message(
                "crm.deal-stages", 0, deal, stage(deal, "ann", at(-50), "lost", f"{deal}-2", lost_reason=reason)
            )
        )
    messages.append(
        harness.message("crm.deal-stages", 0, "x", stage("x", "ann", at(-50), "lost", "x-1", lost_reason="r00"))
    )
    harness.deals_in(*messages)
    lost = {"team": "unassigned", "period": "day"}
    assert harness.value("leadpulse_deals_lost_by_reason", reason="r00", **lost) == 2
    assert harness.value("leadpulse_deals_lost_by_reason", reason="r19", **lost) == 1
    assert harness.value("leadpulse_deals_lost_by_reason", reason="r20", **lost) is None
    assert harness.value("leadpulse_deals_lost_by_reason", reason="other", **lost) == 2  # r20, r21


events = st.lists(
    st.tuples(
        st.sampled_from(["d1", "d2", "d3", "d4"]),
        st.sampled_from(["ann", "bob", "cid"]),
        st.sampled_from([None, "east", "west"]),
        st.sampled_from([None, "inbound_demo", "referral", "webinar"]),
        st.floats(min_value=-3 * 3600, max_value=0),
        st.booleans(),  # a stage event, or a touch
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(events)
def test_by_source_sums_equal_the_rep_level_family_per_team_and_period(items: list) -> None:
    harness = Harness()
    messages = []
    for number, (deal, rep, team, source, offset, is_stage) in enumerate(items):
        extra = {"team": team} if team else {}
        if is_stage:
            value = stage(deal, rep, at(offset), "new", f"e{number}", source=source, **extra)
            messages.append(harness.message("crm.deal-stages", 0, deal, value))
        else:
            messages.append(
                harness.message("crm.calls", 0, deal, {**call(deal, rep, at(offset), f"e{number}"), **extra})
            )
    harness.deals_in(*messages)
    by_rep: dict = defaultdict(float)
    by_source: dict = defaultdict(float)
    for family in harness.registry.collect():
        for sample in family.samples:
            labels = sample.labels
            if sample.name.startswith("leadpulse_first_response_seconds"):
                by_rep[
                    (
                        sample.name[len("leadpulse_first_response_seconds") :],
                        labels["team"],
                        labels["period"],
                        labels.get("le"),
                    )
                ] += sample.value
            elif sample.name.startswith("leadpulse_first_response_by_source_seconds"):
                suffix = sample.name[len("leadpulse_first_response_by_source_seconds") :]
                by_source[(suffix, labels["team"], labels["period"], labels.get("le"))] += sample.value
    shared = {key: value for key, value in by_source.items() if key[2] in ("day", "month")}  # the rep-level periods
    assert by_rep == pytest.approx(shared)


def test_whether_a_rep_is_working_now(scenario: Harness) -> None:
    # NOW is Tuesday 12:30 UTC: inside ann's and bob's default 09:00-17:00 (UTC); 21:30 in Tokyo.
    tokyo = {
        "rep_id": "kei",
        "team": "apac",
        "role": "sdr",
        "timezone": "Asia/Tokyo",
        "updated_at": "2024-03-01T00:00:00Z",
    }
    scenario.reps_in(scenario.message("crm.reps", 0, "kei", tokyo))
    v = scenario.value
    assert v("leadpulse_rep_working", rep="ann", team="emea") == 1
    assert v("leadpulse_rep_working", rep="bob", team="emea") == 1
    assert v("leadpulse_rep_working", rep="kei", team="apac") == 0


def test_the_weighted_pipeline_is_open_amount_times_the_stage_probability(scenario: Harness) -> None:
    """Deal c, bob's, open in negotiation for 700 (USD, the default currency): 700 x 0.75."""
    bob = {"rep": "bob", "team": "emea", "stage": "negotiation", "currency": "USD"}
    assert scenario.value("leadpulse_pipeline_amount", **bob) == 700
    assert scenario.value("leadpulse_weighted_pipeline_amount", **bob) == 525
    assert scenario.value("leadpulse_weighted_pipeline_amount", **{**bob, "rep": "ann"}) is None  # won and lost: none


def test_stage_probabilities_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADPULSE_STAGE_PROBABILITIES", '{"negotiation": 0.9}')
    harness = Harness()
    harness.deals_in(
        harness.message(
            "crm.deal-stages", 0, "n", stage("n", "bob", at(-60), "negotiation", "n1", team="emea", amount=700)
        ),
        harness.message(
            "crm.deal-stages", 0, "q", stage("q", "bob", at(-60), "signed_off", "q1", team="emea", amount=50)
        ),
    )
    bob = {"rep": "bob", "team": "emea", "currency": "USD"}
    assert harness.value("leadpulse_weighted_pipeline_amount", stage="negotiation", **bob) == 630
    assert harness.value("leadpulse_weighted_pipeline_amount", stage="other", **bob) == 5  # other: 0.10 by default
