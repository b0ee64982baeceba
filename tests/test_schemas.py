"""The JSON Schema files in schemas/json are exactly what the models generate."""

from __future__ import annotations

import json

import jsonschema
import pytest

from schemas.generate import SCHEMA_DIR, SCHEMA_FILES, render


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_schema_file_matches_its_model(name: str) -> None:
    path = SCHEMA_DIR / name
    assert path.exists(), f"{path} is missing: run python -m schemas.generate"
    assert path.read_text() == render(SCHEMA_FILES[name]), f"{name} drifted: run python -m schemas.generate"


def test_no_stray_schema_files() -> None:
    assert {path.name for path in SCHEMA_DIR.glob("*.json")} == set(SCHEMA_FILES)


def test_schemas_are_valid_and_accept_an_example() -> None:
    schema = json.loads((SCHEMA_DIR / "input.calls.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    example = {
        "event_id": "e",
        "occurred_at": "2024-01-01T00:00:00Z",
        "deal_id": "d",
        "rep_id": "r",
        "call_id": "c",
        "direction": "outbound",
        "outcome": "busy",
        "talk_seconds": 0,
    }
    jsonschema.Draft202012Validator(schema).validate(example)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({**example, "direction": "sideways"})
