"""A deal's state as the API shows it, on hand-computed deals."""

from __future__ import annotations

from streams.api.deals import deal_body
from streams.fold.contributions import FoldContext
from streams.fold.periods import Calendar
from streams.fold.sla import SlaPolicy
from tests.test_fold_rules import T0, build, call, email, stage
from tests.test_outputs import Profiles, profile

CTX = FoldContext(
    Calendar("UTC"), Profiles(profile("ann", "emea", T0 - 86400)), SlaPolicy(default_steps=(300.0, 900.0))
)


def test_a_lead_waiting_past_its_first_step() -> None:
    body = deal_body(build(stage(T0, "new", source="inbound_demo")), CTX, T0 + 400)
    assert body is not None
    assert (body.stage, body.owner, body.team, body.source, body.deal_type) == (
        "new",
        "ann",
        "emea",
        "inbound_demo",
        "new_business",
    )
    assert (body.sla.state, body.sla.steps_crossed, body.sla.steps_seconds) == ("breached", 1, [300.0, 900.0])
    assert body.first_response is None and body.closed is None and body.amount is None


def test_an_answered_and_won_deal() -> None:
    state = build(
        stage(T0, "new", rep="bob"),
        email(T0 + 120, rep="bob"),
        stage(T0 + 500, "proposal", rep="ann", amount_micro=2_500_500_000, currency="EUR", expected_close="2024-04-01"),
        stage(T0 + 900, "won", rep="ann"),
        call(T0 + 1000),
    )
    body = deal_body(state, CTX, T0 + 2000)
    assert body is not None
    assert (body.stage, body.owner, body.team, body.amount, body.currency) == ("won", "ann", "emea", "2500.5", "EUR")
    assert body.first_response is not None
    assert (body.first_response.rep, body.first_response.seconds, body.first_response.kind) == ("bob", 120, "email")
    assert body.sla.state == "closed" and body.closed is not None and body.closed.outcome == "won"
    assert str(body.expected_close_date) == "2024-04-01" and (body.stage_events, body.activities) == (3, 2)


def test_activities_alone_are_not_a_deal() -> None:
    assert deal_body(build(call(T0)), CTX, T0) is None


def test_the_openapi_document_describes_every_route_with_resolvable_schemas() -> None:
    import json

    import jsonschema

    from streams.api.openapi import ROUTES, document

    doc = document("test")
    assert doc["openapi"].startswith("3.") and set(doc["paths"]) == {route.path for route in ROUTES}
    text = json.dumps(doc)
    refs = {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}
    assert refs <= set(doc["components"]["schemas"]), refs - set(doc["components"]["schemas"])
    # A real body validates against its schema (resolved through the document's components).
    body = deal_body(build(stage(T0, "new")), CTX, T0 + 10)
    assert body is not None
    schema = {"$ref": "#/components/schemas/DealBody", "components": doc["components"]}
    jsonschema.Draft202012Validator(schema).validate(json.loads(body.model_dump_json()))
