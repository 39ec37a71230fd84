"""OpenAPI description of what POST /v1/events takes, generated from the contracts (adapters).

The route reads its body itself (so one bad item never fails the batch), which leaves FastAPI
nothing to describe; this module supplies the schema clients, and schemathesis, read.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from schemas import ARRIVING_FACTS, ArrivingFact

_REF = "#/components/schemas/{model}"
#: Envelope fields ingest assigns; a submission must not carry them.
_ASSIGNED = ("event_id", "recorded_at", "actor", "seq", "prev_hash", "hash")
SUBMISSION = "EventSubmission"
BATCH = "EventBatch"


def submission_components(max_items: int) -> dict[str, dict[str, Any]]:
    """Component schemas: every arriving type without its assigned fields, and the batch."""
    schema = TypeAdapter(ArrivingFact).json_schema(ref_template=_REF, mode="validation")
    components: dict[str, dict[str, Any]] = schema.pop("$defs")
    for model in ARRIVING_FACTS:
        _strip_assigned(components[model.__name__])
    components[SUBMISSION] = schema
    one = {"$ref": _REF.format(model=SUBMISSION)}
    components[BATCH] = {
        "description": f"One event, or an array of 1 to {max_items} events.",
        "anyOf": [one, {"type": "array", "items": one, "minItems": 1, "maxItems": max_items}],
    }
    return components


def request_body() -> dict[str, Any]:
    """The `requestBody` object of POST /v1/events."""
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model=BATCH)}}},
    }


def _strip_assigned(model: dict[str, Any]) -> None:
    for name in _ASSIGNED:
        model["properties"].pop(name, None)
    model["required"] = [name for name in model.get("required", []) if name not in _ASSIGNED]
