"""Generate the JSON Schema files in ``schemas/json`` from the pydantic models.

Run ``python -m schemas.generate`` after changing a model; ``tests/test_schemas.py`` fails while a
model and its file disagree.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.events import MODEL_BY_TOPIC
from schemas.outputs import AlertRecord, DeadLetterRecord, LeadResponseRecord

SCHEMA_DIR = Path(__file__).parent / "json"

SCHEMA_FILES: dict[str, type[BaseModel]] = {
    **{f"input.{topic.value}.schema.json": model for topic, model in MODEL_BY_TOPIC.items()},
    "output.dead_letter.schema.json": DeadLetterRecord,
    "output.lead_responses.schema.json": LeadResponseRecord,
    "output.alerts.schema.json": AlertRecord,
}


def render(model: type[BaseModel]) -> str:
    """The canonical text of a model's JSON Schema (validation mode, sorted keys)."""
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, model in SCHEMA_FILES.items():
        (SCHEMA_DIR / name).write_text(render(model))
        print(f"wrote {SCHEMA_DIR / name}")


if __name__ == "__main__":
    main()
