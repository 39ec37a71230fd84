"""One AsyncAPI 3.0 document of every NATS subject, stream and payload safetymon uses.

Why our own generator: faststream's AsyncAPI generator describes what is registered on a
broker with `@broker.subscriber` / `@broker.publisher`, and the services register nothing
there (they use the NatsBroker for its connection and drive JetStream with nats-py), so it
produces an empty document. This module builds the document from the same sources the
services build their subjects and payloads from: `schemas.Subjects`, the fact models (the
JSON Schemas `safetymon schema export` writes) and the request subjects of the services'
adapters. `asyncapi_document` is pure; `write_asyncapi` writes it next to the JSON Schemas.

Not on NATS, so not here: notification and acknowledgement facts (notify's audit trail in
DuckDB) and the ingest HTTP API.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from schemas import (
    ARRIVING_FACTS,
    DUPLICATE_WINDOW_SECONDS,
    NOTIFY_DURABLE,
    RULES_DURABLE,
    SYSTEM_FACTS,
    ReportIssued,
    SignalRaised,
    SignalUpdated,
    Subjects,
)
from schemas.subjects import DEFAULT_NAMESPACE, NOTIFY_REPORTS_DURABLE
from services.ingest.adapters.head_anchor import anchor_stream, anchor_subject
from services.notify.adapters.audit_export import snapshot_subject as notify_snapshot_subject
from services.notify.adapters.nats_requests import (
    ack_subject,
    flush_digests_subject,
    log_subject,
    state_subject,
)
from services.rules.adapters.audit_export import snapshot_subject as rules_snapshot_subject

FILE_NAME: Final = "asyncapi.json"
VERSION: Final = "0.1.0"  # pyproject's; the document changes when a contract does
_REF: Final = "#/components/schemas/{model}"
_UUID: Final = {"type": "string", "format": "uuid"}
_MSG_ID_HEADERS: Final = {
    "type": "object",
    "properties": {
        "Nats-Msg-Id": {
            **_UUID,
            "description": "The event id: JetStream drops a repeat within the window.",
        }
    },
    "required": ["Nats-Msg-Id"],
}
_ERROR: Final = {
    "type": "string",
    "description": "Why the request was refused or failed; no other field then.",
}
_SNAPSHOT_REQUEST: Final = {
    "type": "object",
    "properties": {
        "directory": {
            "type": "string",
            "description": "Absolute path on the service's machine; a new one when absent.",
        }
    },
    "additionalProperties": True,
}
_SNAPSHOT_REPLY: Final = {
    "type": "object",
    "properties": {
        "service": {"type": "string"},
        "directory": {"type": "string"},
        "files": {"type": "object", "description": "Per Parquet file: path, rows, sha256."},
        "error": _ERROR,
    },
}
_EMPTY_REQUEST: Final = {"type": "object", "description": "Any JSON object; `{}` is usual."}


def asyncapi_document(namespace: str = DEFAULT_NAMESPACE) -> dict[str, Any]:
    """Return the AsyncAPI 3.0 document for one namespace (deterministic, JSON-ready)."""
    subjects = Subjects(namespace)
    schemas, refs = _payload_schemas()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for stream in _streams(subjects):
        for model in stream["models"]:
            name = _event_type(model)
            version = model.model_fields["schema_version"].default
            key = f"{name}.v{version}"
            messages[key] = {
                "name": key,
                "title": model.__name__,
                "summary": _first_line(model.__doc__),
                "contentType": "application/json",
                "headers": _MSG_ID_HEADERS,
                "payload": refs[model],
            }
            channels[key] = {
                "address": stream["subject"](name, version),
                "messages": {key: {"$ref": f"#/components/messages/{key}"}},
                "x-jetstream": {
                    "stream": stream["name"],
                    "filter": stream["filter"],
                    "duplicate_window_seconds": DUPLICATE_WINDOW_SECONDS,
                    "durables": list(stream["durables"]),
                },
            }
            operations[f"{stream['producer']}.publish.{key}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{key}"},
                "summary": f"{stream['producer']} publishes, confirmed by JetStream.",
                "tags": [{"name": stream["producer"]}],
            }
    _add_anchor(namespace, channels=channels, operations=operations, messages=messages)
    for request in _requests(namespace):
        _add_request(request, channels=channels, operations=operations, messages=messages)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "safetymon",
            "version": VERSION,
            "description": (
                f"Subjects of namespace {namespace!r}; a deployment with another namespace "
                "replaces the first subject token, and the stream prefix with its upper case."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {"host": "localhost:4222", "protocol": "nats", "description": "JetStream"}
        },
        "channels": dict(sorted(channels.items())),
        "operations": dict(sorted(operations.items())),
        "components": {"messages": dict(sorted(messages.items())), "schemas": schemas},
    }


def write_asyncapi(directory: Path, namespace: str = DEFAULT_NAMESPACE) -> Path:
    """Write `asyncapi.json` into `directory`, rendered like the JSON Schemas; return it."""
    path = directory / FILE_NAME
    path.write_text(render(asyncapi_document(namespace)))
    return path


def render(document: dict[str, Any]) -> str:
    """The file's text: sorted keys, two-space indent, final newline (stable diffs)."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def document_subjects(document: dict[str, Any]) -> set[str]:
    """Every concrete channel address in a document (reply inboxes have none)."""
    return {c["address"] for c in document["channels"].values() if c.get("address")}


def _streams(subjects: Subjects) -> list[dict[str, Any]]:
    return [
        {
            "name": subjects.facts_stream,
            "filter": subjects.facts_filter,
            "subject": subjects.fact_subject,
            "producer": "ingest",
            "durables": (RULES_DURABLE,),
            "models": (*ARRIVING_FACTS, *SYSTEM_FACTS),
        },
        {
            "name": subjects.signals_stream,
            "filter": subjects.signals_filter,
            "subject": subjects.signal_subject,
            "producer": "rules",
            "durables": (NOTIFY_DURABLE,),
            "models": (SignalRaised, SignalUpdated),
        },
        {
            "name": subjects.reports_stream,
            "filter": subjects.reports_filter,
            "subject": subjects.report_subject,
            "producer": "report",
            "durables": (NOTIFY_REPORTS_DURABLE,),
            "models": (ReportIssued,),
        },
    ]


def _add_anchor(
    namespace: str,
    *,
    channels: dict[str, Any],
    operations: dict[str, Any],
    messages: dict[str, Any],
) -> None:
    """The log's head, published outside the facts stream (tamper evidence for audit)."""
    key = "ingest_head"
    messages[key] = {
        "name": key,
        "summary": "Position and hash of the newest log entry, as ingest published it.",
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "properties": {
                "Nats-Msg-Id": {"type": "string", "description": "ingest-head:<seq>:<hash>"}
            },
        },
        "payload": {
            "type": "object",
            "properties": {
                "seq": {"type": "integer", "minimum": 0},
                "hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "published_at": {"type": "string", "format": "date-time"},
            },
            "required": ["seq", "hash", "published_at"],
        },
    }
    channels[key] = {
        "address": anchor_subject(namespace),
        "messages": {key: {"$ref": f"#/components/messages/{key}"}},
        "x-jetstream": {
            "stream": anchor_stream(namespace),
            "filter": f"{namespace}.anchor.>",
            "duplicate_window_seconds": DUPLICATE_WINDOW_SECONDS,
            "durables": [],  # read as the stream's last message (`safetymon audit verify`)
        },
    }
    operations[f"ingest.publish.{key}"] = {
        "action": "send",
        "channel": {"$ref": f"#/channels/{key}"},
        "summary": "ingest publishes its head periodically, confirmed by JetStream.",
        "tags": [{"name": "ingest"}],
    }


def _requests(namespace: str) -> list[dict[str, Any]]:
    """Core NATS request/reply endpoints (outside every stream); every request gets a reply."""
    return [
        {
            "key": "notify.ack",
            "address": ack_subject(namespace),
            "service": "notify",
            "summary": "Acknowledge an alert on someone's behalf (`safetymon ack`).",
            "request": {
                "type": "object",
                "properties": {
                    "signal_id": _UUID,
                    "by": {"type": "string", "minLength": 1},
                    "reason": {"type": "string", "minLength": 1},
                },
                "required": ["signal_id", "by", "reason"],
            },
            "reply": {
                "type": "object",
                "properties": {
                    "acknowledgement": {"type": "object"},
                    "error": _ERROR,
                    "status": {"type": "integer", "description": "HTTP-like code of a refusal."},
                },
            },
        },
        {
            "key": "notify.log",
            "address": log_subject(namespace),
            "service": "notify",
            "summary": "Read the delivery log (`safetymon notifications`).",
            "request": {
                "type": "object",
                "properties": {"signal_id": _UUID, "participant_id": {"type": "string"}},
            },
            "reply": {
                "type": "object",
                "properties": {
                    "entries": {"type": "array", "items": {"type": "object"}},
                    "error": _ERROR,
                    "status": {"type": "integer"},
                },
            },
        },
        {
            "key": "notify.state",
            "address": state_subject(namespace),
            "service": "notify",
            "summary": "Read only: unsent notifications and the open U0 alerts.",
            "request": _EMPTY_REQUEST,
            "reply": {
                "type": "object",
                "properties": {
                    "unsent": {"type": "integer"},
                    "open_alerts": {"type": "array", "items": {"type": "object"}},
                    "error": _ERROR,
                },
            },
        },
        {
            "key": "notify.digests.flush",
            "address": flush_digests_subject(namespace),
            "service": "notify",
            "summary": "Send the held U2 digests now.",
            "request": _EMPTY_REQUEST,
            "reply": {
                "type": "object",
                "properties": {"moved": {"type": "integer"}, "error": _ERROR},
            },
        },
        {
            "key": "notify.audit.snapshot",
            "address": notify_snapshot_subject(namespace),
            "service": "notify",
            "summary": "Write notify's audit trail and outbox as Parquet (`safetymon audit`).",
            "request": _SNAPSHOT_REQUEST,
            "reply": _SNAPSHOT_REPLY,
        },
        {
            "key": "rules.audit.snapshot",
            "address": rules_snapshot_subject(namespace),
            "service": "rules",
            "summary": "Write the rules service's signals and configuration history as Parquet.",
            "request": _SNAPSHOT_REQUEST,
            "reply": _SNAPSHOT_REPLY,
        },
    ]


def _add_request(
    request: dict[str, Any],
    *,
    channels: dict[str, Any],
    operations: dict[str, Any],
    messages: dict[str, Any],
) -> None:
    key = request["key"]
    for part in ("request", "reply"):
        messages[f"{key}.{part}"] = {
            "name": f"{key}.{part}",
            "contentType": "application/json",
            "payload": request[part],
        }
    channels[key] = {
        "address": request["address"],
        "messages": {f"{key}.request": {"$ref": f"#/components/messages/{key}.request"}},
    }
    # The reply goes to the requester's inbox, a subject NATS makes up per request.
    channels[f"{key}.reply"] = {
        "address": None,
        "description": "The requester's inbox (the request's reply subject).",
        "messages": {f"{key}.reply": {"$ref": f"#/components/messages/{key}.reply"}},
    }
    operations[f"{request['service']}.answer.{key}"] = {
        "action": "receive",
        "channel": {"$ref": f"#/channels/{key}"},
        "summary": request["summary"],
        "tags": [{"name": request["service"]}],
        "reply": {"channel": {"$ref": f"#/channels/{key}.reply"}},
    }


def _payload_schemas() -> tuple[dict[str, Any], dict[type[BaseModel], dict[str, Any]]]:
    """One shared set of component schemas (pydantic's, as exported) and each model's $ref."""
    models: list[type[BaseModel]] = [
        *ARRIVING_FACTS,
        *SYSTEM_FACTS,
        SignalRaised,
        SignalUpdated,
        ReportIssued,
    ]
    keyed, top = models_json_schema(
        [(model, "serialization") for model in models], ref_template=_REF
    )
    refs = {model: keyed[(model, "serialization")] for model in models}
    return dict(sorted(top.get("$defs", {}).items())), refs


def _event_type(model: type[BaseModel]) -> str:
    return str(model.model_fields["event_type"].default)


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc and doc.strip() else ""
