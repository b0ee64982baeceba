"""The OpenAPI 3 document, generated from the response models (served at ``/openapi.json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from streams.api.models import AwaitingBody, DealBody, ErrorBody, MetricsBody, TeamsBody
from streams.api.params import DEFAULT_LIMIT, MAX_LIMIT
from streams.fold.periods import PeriodKind

REF_TEMPLATE = "#/components/schemas/{model}"
_PERIOD_PARAMETERS = [
    {"name": "period", "in": "query", "schema": {"type": "string", "enum": [kind.value for kind in PeriodKind]}},
    {
        "name": "start",
        "in": "query",
        "schema": {"type": "string"},
        "description": "A date in the period (YYYY-MM-DD); for a quarter or a year, its first day (fiscal calendar).",
    },
]


@dataclass(frozen=True)
class Route:
    path: str
    summary: str
    body: type[BaseModel]
    errors: tuple[int, ...] = (400, 401, 404, 503)
    parameters: list[dict[str, Any]] = field(default_factory=list)
    guarded: bool = True  # needs the bearer token when one is set


_LIMIT = [
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        "description": "The oldest this many leads.",
    }
]
ROUTES = (
    Route("/deals/{deal_id}", "A deal's state, answered by the worker that owns it.", DealBody, (401, 404, 503)),
    Route(
        "/reps/{rep_id}/metrics",
        "Every catalog item for a rep in one period, gathered from every worker.",
        MetricsBody,
        parameters=_PERIOD_PARAMETERS,
    ),
    Route(
        "/teams/{team}/metrics",
        "Every catalog item for a team in one period, gathered from every worker.",
        MetricsBody,
        parameters=_PERIOD_PARAMETERS,
    ),
    Route(
        "/teams/{team}/awaiting",
        "The team's leads waiting for a first response now, oldest first, gathered from every worker.",
        AwaitingBody,
        parameters=_LIMIT,
    ),
    Route("/teams", "The teams of the reps' profiles in force now.", TeamsBody, (401, 503)),
)
_ERRORS = {
    400: "A parameter is invalid.",
    401: "The bearer token is missing or wrong.",
    404: "Unknown key.",
    503: "Not ready.",
}


def document(version: str) -> dict[str, Any]:
    models = {route.body for route in ROUTES} | {ErrorBody}
    _, schemas = models_json_schema([(model, "serialization") for model in models], ref_template=REF_TEMPLATE)
    paths: dict[str, Any] = {}
    for route in ROUTES:
        parameters = [
            {"name": name.strip("{}"), "in": "path", "required": True, "schema": {"type": "string"}}
            for name in route.path.split("/")
            if name.startswith("{")
        ] + route.parameters
        responses = {"200": {"description": "OK", "content": _json(route.body)}}
        responses |= {
            str(status): {"description": _ERRORS[status], "content": _json(ErrorBody)} for status in route.errors
        }
        operation: dict[str, Any] = {"summary": route.summary, "parameters": parameters, "responses": responses}
        if route.guarded:
            operation["security"] = [{"bearer": []}]
        paths[route.path] = {"get": operation}
    return {
        "openapi": "3.1.0",
        "info": {"title": "LeadPulse", "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=model.__name__)}}}
