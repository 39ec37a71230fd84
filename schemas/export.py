"""JSON Schema of every contract, keyed by file name (pure; the CLI writes the files)."""

from __future__ import annotations

from typing import Any

from schemas.facts import Submission


def json_schemas() -> dict[str, dict[str, Any]]:
    """One JSON Schema per event type (`<event_type>.v<version>.json`) plus the submission."""
    from schemas import ALL_FACTS  # the package imports this module's siblings first

    schemas: dict[str, dict[str, Any]] = {}
    for event_type, model in sorted(ALL_FACTS.items()):
        version = model.model_fields["schema_version"].default
        schema = model.model_json_schema(mode="serialization")
        schema["$id"] = f"https://safetymon.dev/schemas/{event_type}.v{version}.json"
        schemas[f"{event_type}.v{version}.json"] = schema
    submission = Submission.model_json_schema()
    submission["$id"] = "https://safetymon.dev/schemas/submission.v1.json"
    schemas["submission.v1.json"] = submission
    return schemas
