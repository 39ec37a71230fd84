"""The AsyncAPI document: committed as generated, valid AsyncAPI 3.0, and complete.

`asyncapi-3.0.0.schema.json` beside this file is the official AsyncAPI 3.0.0 JSON Schema
(asyncapi/spec-json-schemas, schemas/3.0.0-without-$id.json at 7dd3990, Apache-2.0),
vendored so the check runs offline.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from safetymon.asyncapi import (
    FILE_NAME,
    asyncapi_document,
    document_subjects,
    render,
    write_asyncapi,
)
from schemas import ALL_FACTS, Subjects

HERE = Path(__file__).parent
COMMITTED = HERE / "schemas" / "snapshots" / FILE_NAME
SAMPLES = HERE / "schemas" / "samples"
SPEC = HERE / "asyncapi-3.0.0.schema.json"
ROOT = HERE.parents[1]
# A subject is built as f"{namespace}.<tokens>" (schemas/subjects.py and the services).
_SUBJECT_PATTERN = re.compile(r'f"\{(?:self\.)?namespace\}\.([a-z_.>]+)[{"]')


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document()


def test_committed_file_is_what_the_code_generates(document: dict[str, Any]) -> None:
    """Regenerate with SAFETYMON_UPDATE_SNAPSHOTS=1 (or `safetymon schema export`)."""
    if os.environ.get("SAFETYMON_UPDATE_SNAPSHOTS") == "1":
        write_asyncapi(COMMITTED.parent)

    assert COMMITTED.read_text() == render(document)


def test_document_is_valid_asyncapi_3(document: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(json.loads(SPEC.read_text()))

    errors = [f"{list(e.path)}: {e.message[:200]}" for e in validator.iter_errors(document)]

    assert errors == []


def test_a_broken_document_is_caught_by_the_validator(document: dict[str, Any]) -> None:
    """The validity check above can fail."""
    broken = json.loads(render(document))
    broken["operations"]["ingest.publish.lab_result_recorded.v1"]["action"] = "publish"

    assert not jsonschema.Draft7Validator(json.loads(SPEC.read_text())).is_valid(broken)


def test_every_subject_built_in_the_code_is_in_the_document(document: dict[str, Any]) -> None:
    """Every `f"{namespace}...."` subject in schemas, services, kit and safetymon appears."""
    addresses = document_subjects(document)
    filters = {
        c["x-jetstream"]["filter"] for c in document["channels"].values() if "x-jetstream" in c
    }
    found: dict[str, str] = {}
    for package in ("schemas", "services", "kit", "safetymon"):
        for path in (ROOT / package).rglob("*.py"):
            for tail in _SUBJECT_PATTERN.findall(path.read_text(encoding="utf-8")):
                found[f"safetymon.{tail}"] = str(path.relative_to(ROOT))
    known = addresses | filters

    def covered(subject: str) -> bool:
        if subject.endswith(".>"):  # a wildcard (stream filter, permission): some subject fits
            return any(a.startswith(subject[:-1]) for a in known)
        if subject.endswith("."):  # a template's fixed head, e.g. f"{namespace}.ingest.{type}"
            return any(a.startswith(subject) for a in addresses)
        return subject in known

    missing = {subject: where for subject, where in found.items() if not covered(subject)}

    assert len(found) >= 10  # the scan itself still finds the subjects
    assert missing == {}


def test_every_streamed_fact_type_has_a_channel_on_its_stream(document: dict[str, Any]) -> None:
    subjects = Subjects()
    streamed = {
        name: subjects.signal_subject(name)
        if name.startswith("signal_")
        else subjects.report_subject(name)
        if name == "report_issued"
        else subjects.fact_subject(name)
        for name, model in ALL_FACTS.items()
        if not name.startswith(("notification_", "alert_"))  # notify's audit trail, not NATS
    }

    assert set(streamed.values()) <= document_subjects(document)


@pytest.mark.parametrize("sample", sorted(SAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_golden_samples_validate_against_their_channel_payload(
    document: dict[str, Any], sample: Path
) -> None:
    raw = json.loads(sample.read_text())
    key = f"{raw['event_type']}.v{raw['schema_version']}"
    payload = document["components"]["messages"][key]["payload"]

    jsonschema.validate(raw, {**payload, "components": document["components"]})


def test_another_namespace_renames_subjects_and_streams() -> None:
    document = asyncapi_document("trial_b")

    assert "trial_b.notify.ack" in document_subjects(document)
    assert document["channels"]["signal_raised.v1"]["x-jetstream"]["stream"] == "TRIAL_B_SIGNALS"
