"""The 30 HL7 FHIR R4 specification examples through `safetymon ingest --format fhir`.

Each example either becomes an event or is named in the reasons file with why. The expected
outcome of each file was checked by hand against the example's JSON (LOINC code, status,
effective time, unit system) and RULES.md §0.5.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from typer.testing import CliRunner

from safetymon.cli import app
from safetymon.runner import Stack

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "data" / "fhir-r4"
MAPPING = Path(__file__).resolve().parents[2] / "safetymon/importers/mappings/fhir-r4-examples.toml"
#: File -> the tag of the event it becomes.
MAPPED = {
    "adverseevent-example.json": "AdverseEvent",
    "condition-example-f203-sepsis.json": "Condition",
    "observation-example-bloodpressure.json": "Observation:vital_signs",
    "observation-example-body-temperature.json": "Observation:vital_signs",
    "observation-example-glasgow.json": "Observation:vital_signs",
    "observation-example-heart-rate.json": "Observation:vital_signs",
    "observation-example-satO2.json": "Observation:vital_signs",
    "observation-example-f005-hemoglobin.json": "Observation:lab:718-7",
}
#: Files that are wrong for us (rejected) and the field named.
REJECTED = {
    "observation-example-f204-creatinine.json": "code",  # a local lab code only
    # A blood culture with its organism (SNOMED CT) maps, but this example has no collection
    # time, only `issued` (the report's release), which is never taken for it.
    "observation-example-f206-staphylococcus.json": "effective[x]",
}


async def _import(stack: Stack, reasons: Path) -> tuple[int, dict[str, Any]]:
    args = [
        "ingest",
        "--format",
        "fhir",
        "--mapping",
        str(MAPPING),
        "--url",
        f"http://127.0.0.1:{stack.http_port}",
        "--reasons",
        str(reasons),
        str(EXAMPLES),
    ]
    with structlog.testing.capture_logs():
        result = await asyncio.to_thread(CliRunner().invoke, app, args)
    return result.exit_code, json.loads(result.stdout)


async def test_every_fhir_example_maps_or_is_reported_with_a_reason_and_twice_adds_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    files = sorted(p.name for p in EXAMPLES.glob("*.json"))

    code, first = await _import(stack, tmp_path / "first.jsonl")
    _, second = await _import(stack, tmp_path / "second.jsonl")

    assert len(files) == 30
    assert code == 1  # two examples are rejected
    reasons = [json.loads(x) for x in (tmp_path / "first.jsonl").read_text().splitlines()]
    reported = {r["source_id"].split(":")[0].split("#")[0] for r in reasons}
    assert reported | set(MAPPED) == set(files)
    assert not reported & set(MAPPED)
    assert all(r["reason"] for r in reasons)
    rejected = {
        r["source_id"].split(":")[0]: r["field"] for r in reasons if r["status"] == "rejected"
    }
    assert rejected == REJECTED
    withdrawn = [r for r in reasons if r["source_id"].startswith("medicationadministration0303")]
    assert [w["reason"] for w in withdrawn] == ["entered-in-error: the sender withdrew it"]
    tags: dict[str, int] = {}
    for tag in MAPPED.values():
        tags[tag] = tags.get(tag, 0) + 1
    assert {t: c["accepted"] for t, c in first["by_tag"].items()} == tags
    # 30 files hold 32 resources: each DiagnosticReport bundle has a report and an order.
    assert (first["read"], first["accepted"], first["rejected"]) == (32, len(MAPPED), 2)
    assert first["skipped"] == 32 - len(MAPPED) - 2
    assert (second["accepted"], second["duplicate"]) == (0, len(MAPPED))
