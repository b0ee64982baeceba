"""Alerts and lead responses owed by a deal's state (streams/fold/outputs.py), by hand."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.outputs import AlertKind, AlertRecord, LeadResponseRecord
from streams.fold import outputs
from streams.fold.contributions import FoldContext
from streams.fold.deals import Delivery, fold
from streams.fold.facts import DealTopic
from streams.fold.outputs import Plan, fingerprint, json_instant, next_due, record_json, response_record
from streams.fold.periods import Calendar
from streams.fold.profiles import History, Profile
from streams.fold.sla import SlaPolicy
from streams.state.codec import profile_from_json
from tests.test_fold_rules import T0, build, call, email, stage

DAY = 86400
STEPS = SlaPolicy(default_steps=(300.0, 900.0))
CTX = FoldContext(Calendar("UTC"), sla=STEPS)


class Profiles:
    def __init__(self, *profiles: Profile) -> None:
        self.by_rep: dict[str, History] = {}
        for profile in profiles:
            self.by_rep[profile.rep] = tuple(
                sorted((*self.by_rep.get(profile.rep, ()), profile), key=lambda p: p.updated_at)
            )

    def history(self, rep: str) -> History:
        return self.by_rep.get(rep, ())

    def reps(self) -> list[str]:
        return sorted(self.by_rep)


def profile(rep: str, team: str, updated_at: float, **fields: object) -> Profile:
    data = {
        "rep_id": rep,
        "team": team,
        "role": "sdr",
        "updated_at": datetime.fromtimestamp(updated_at, UTC).isoformat(),
        **fields,
    }
    return profile_from_json(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))


def plan(*args: object, **kwargs: object) -> Plan:
    """:func:`streams.fold.outputs.plan`, and every record it owes holds its model's values, written
    as the model writes its JSON (the emitter writes the plain values with orjson)."""
    owed = outputs.plan(*args, **kwargs)  # type: ignore[arg-type]
    for content, record in [(alert, AlertRecord.model_validate(alert)) for alert in owed.alert_contents] + (
        [] if owed.response_content is None else [(owed.response_content, owed.response)]
    ):
        assert record_json(content) == record.model_dump_json().encode()
    return owed


def alert_ids(state, now: float, ctx: FoldContext = CTX, lookback: float = DAY) -> tuple[list[str], object]:
    owed = plan(state, ctx, now, lookback)
    return [alert.alert_id for alert in owed.alerts], owed


def test_each_step_is_owed_once_when_crossed() -> None:
    lead = build(stage(T0, "new"))
    assert alert_ids(lead, T0 + 299)[0] == []
    assert next_due(lead, CTX, T0 + 299) == T0 + 300
    ids, owed = alert_ids(lead, T0 + 301)
    assert ids == ["sla_breach:1@d1"]
    (alert,) = owed.alerts
    assert (alert.step, alert.steps, alert.threshold_seconds) == (1, 2, 300.0)
    assert alert.at.timestamp() == T0 + 300 and (alert.rep, alert.team) == ("ann", "unassigned")
    marked = owed.state
    assert alert_ids(marked, T0 + 500)[0] == []  # recorded: never again
    assert next_due(marked, CTX, T0 + 500) == T0 + 900
    assert alert_ids(marked, T0 + 901)[0] == ["sla_breach:2@d1"]


def test_a_lead_found_late_gets_every_step_it_crossed_at_once() -> None:
    ids, _ = alert_ids(build(stage(T0, "new")), T0 + 1000)
    assert ids == ["sla_breach:1@d1", "sla_breach:2@d1"]


def test_steps_older_than_the_lookback_are_not_alerted() -> None:
    lead = build(stage(T0, "new"))
    assert alert_ids(lead, T0 + 700, lookback=300)[0] == []  # step 1 crossed 400 s ago
    assert alert_ids(lead, T0 + 1000, lookback=500)[0] == ["sla_breach:2@d1"]  # step 2: 100 s ago


def test_a_touch_resolves_a_breached_lead_and_is_its_response() -> None:
    breached = plan(build(stage(T0, "new", source="inbound_demo")), CTX, T0 + 400, DAY).state
    touched = fold(breached, [Delivery(email(T0 + 450), DealTopic.EMAILS, 0)]).state
    owed = plan(touched, CTX, T0 + 460, DAY)
    (resolved,) = owed.alerts
    assert (resolved.alert_id, resolved.kind, resolved.resolution) == (
        "sla_resolved:1@d1",
        AlertKind.SLA_RESOLVED,
        "touched",
    )
    assert (resolved.step, resolved.at.timestamp()) == (1, T0 + 450)
    response = owed.response
    assert response is not None
    assert (response.revision, response.response_seconds, response.sla_breached) == (1, 450, True)
    assert (response.first_touch_kind, response.source, response.sla_seconds) == ("email", "inbound_demo", 300.0)
    assert next_due(owed.state, CTX, T0 + 460) is None
    assert not plan(owed.state, CTX, T0 + 9999, DAY).owed


def test_closing_resolves_and_an_unbreached_lead_needs_no_resolution() -> None:
    breached = plan(build(stage(T0, "new")), CTX, T0 + 400, DAY).state
    lost = fold(breached, [Delivery(stage(T0 + 500, "lost"), DealTopic.DEAL_STAGES, 5)]).state
    (resolved,) = plan(lost, CTX, T0 + 501, DAY).alerts
    assert resolved.resolution == "closed" and resolved.at.timestamp() == T0 + 500
    quick = build(stage(T0, "new"), call(T0 + 30))
    owed = plan(quick, CTX, T0 + 31, DAY)
    assert owed.alerts == () and owed.response is not None and not owed.response.sla_breached


def test_a_late_earlier_touch_corrects_the_response_with_a_new_revision() -> None:
    first = plan(build(stage(T0, "new"), email(T0 + 600)), CTX, T0 + 601, DAY)
    assert first.response is not None and first.response.revision == 1
    assert not plan(first.state, CTX, T0 + 700, DAY).owed  # unchanged: nothing to publish
    late = fold(first.state, [Delivery(call(T0 + 20), DealTopic.CALLS, 99)]).state
    corrected = plan(late, CTX, T0 + 702, DAY).response
    assert corrected is not None
    assert (corrected.revision, corrected.response_seconds, corrected.first_touch_kind) == (2, 20, "call")


def test_a_profile_arriving_later_corrects_the_team_of_the_response() -> None:
    state = plan(build(stage(T0, "new"), email(T0 + 60)), CTX, T0 + 61, DAY).state
    with_profile = FoldContext(Calendar("UTC"), Profiles(profile("ann", "emea", T0 - DAY)), STEPS)
    corrected = plan(state, with_profile, T0 + 120, DAY).response
    assert corrected is not None and (corrected.revision, corrected.team) == (2, "emea")


def test_a_deal_slips_once_per_expected_close_date() -> None:
    opened = stage(T0, "negotiation", expected_close="2024-03-06", amount_micro=2_500_500_000)
    deal = build(opened, call(T0 + 10))  # answered: no SLA steps
    midnight = datetime(2024, 3, 7, tzinfo=UTC).timestamp()
    assert next_due(deal, CTX, T0) == midnight  # T0 is 5 March
    ids, owed = alert_ids(deal, midnight + 1)
    assert "deal_slipped:2024-03-06@d1" in ids
    slipped = next(alert for alert in owed.alerts if alert.kind is AlertKind.DEAL_SLIPPED)
    assert (slipped.amount, slipped.currency, str(slipped.expected_close_date)) == ("2500.5", "USD", "2024-03-06")
    assert "deal_slipped:2024-03-06@d1" not in alert_ids(owed.state, midnight + 2)[0]
    moved = fold(
        owed.state,
        [Delivery(stage(midnight + 5, "negotiation", expected_close="2024-03-08"), DealTopic.DEAL_STAGES, 9)],
    )
    assert next_due(moved.state, CTX, midnight + 6) == datetime(2024, 3, 9, tzinfo=UTC).timestamp()


def test_business_hours_steps_wait_for_the_owner_working_hours() -> None:
    friday_evening = datetime.fromisoformat("2024-03-08T16:55:00+01:00").timestamp()
    berlin = Profiles(profile("ann", "emea", friday_evening - DAY, timezone="Europe/Berlin"))
    ctx = FoldContext(Calendar("UTC"), berlin, SlaPolicy(default_steps=(600.0,), business_hours=True))
    lead = build(stage(friday_evening, "new"))
    monday = datetime.fromisoformat("2024-03-11T09:05:00+01:00").timestamp()
    assert next_due(lead, ctx, friday_evening) == pytest.approx(monday)  # 5 min Friday + 5 min Monday
    assert alert_ids(lead, monday - 1, ctx)[0] == []
    assert alert_ids(lead, monday + 1, ctx)[0] == ["sla_breach:1@d1"]


def test_a_reopened_lead_is_not_alerted_for_steps_crossed_while_it_was_closed() -> None:
    three = FoldContext(Calendar("UTC"), sla=SlaPolicy(default_steps=(300.0, 900.0, 3600.0)))
    breached = plan(build(stage(T0, "new")), three, T0 + 301, DAY).state  # step 1 sent
    lost = fold(breached, [Delivery(stage(T0 + 400, "lost"), DealTopic.DEAL_STAGES, 5)]).state
    resolved = plan(lost, three, T0 + 401, DAY)
    assert [alert.alert_id for alert in resolved.alerts] == ["sla_resolved:1@d1"]
    reopened = fold(resolved.state, [Delivery(stage(T0 + 2000, "new"), DealTopic.DEAL_STAGES, 6)]).state
    assert alert_ids(reopened, T0 + 2001, three)[0] == []  # step 2 (900 s) passed while it was lost
    assert next_due(reopened, three, T0 + 2001) == T0 + 3600
    again = plan(reopened, three, T0 + 3601, DAY)
    assert [alert.alert_id for alert in again.alerts] == ["sla_breach:3@d1"]
    touched = fold(again.state, [Delivery(email(T0 + 4000), DealTopic.EMAILS, 0)]).state
    assert "sla_resolved:3@d1" in alert_ids(touched, T0 + 4001, three)[0]


def test_close_dates_at_the_ends_of_the_calendar_do_not_crash() -> None:
    for expected in ("9999-12-31", "0001-01-01"):
        deal = build(stage(T0, "negotiation", expected_close=expected), call(T0 + 5))
        assert next_due(deal, CTX, T0 + 10) is None
        assert not plan(deal, CTX, T0 + 10, DAY).alerts


@given(
    created=st.floats(min_value=0, max_value=4e9),
    wait=st.floats(min_value=0, max_value=1e7),
    business=st.floats(min_value=0, max_value=1e7),
    sla=st.one_of(st.integers(min_value=1, max_value=86400), st.floats(min_value=0.001, max_value=1e6)),
    source=st.one_of(st.none(), st.text(min_size=1, max_size=20)),
    kind=st.sampled_from(["call", "email"]),
    breached=st.booleans(),
)
def test_a_response_fingerprint_is_the_one_earlier_releases_stored(
    created: float, wait: float, business: float, sla: float, source: str | None, kind: str, breached: bool
) -> None:
    """Deal records carry the fingerprint of the last response sent; a worker of this release reads
    records an earlier one wrote, so the plain-values fingerprint must equal the one that release
    took of the record's JSON (its ``model_dump(mode="json")`` without the revision)."""
    content = {
        "deal_id": "deal-1",
        "rep": "sdr-1",
        "team": "emea",
        "source": source,
        "created_at": json_instant(created),
        "first_touch_at": json_instant(created + wait),
        "first_touch_kind": kind,
        "first_touch_event_id": "ev-1",
        "response_seconds": float(wait),
        "business_seconds": float(business),
        "sla_seconds": float(sla),
        "sla_breached": breached,
    }
    record = LeadResponseRecord.model_validate(response_record(content, revision=3))
    assert record_json(response_record(content, revision=3)) == record.model_dump_json().encode()
    earlier = orjson.dumps(record.model_dump(mode="json", exclude={"revision"}), option=orjson.OPT_SORT_KEYS)
    assert fingerprint(content) == hashlib.blake2b(earlier, digest_size=8).hexdigest()
    assert record.first_touch_at == datetime.fromtimestamp(created + wait, UTC)
