"""Contracts: JSON Schema snapshots, golden samples, and the CLI export."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from safetymon.cli import app
from schemas import ALL_FACTS, LOG_FACT_ADAPTER, SIGNAL_ADAPTER, canonical_bytes
from schemas.export import json_schemas

HERE = Path(__file__).parent
SNAPSHOTS = HERE / "snapshots"
SAMPLES = HERE / "samples"


def test_every_fact_type_has_a_schema() -> None:
    """One JSON Schema per event type plus the submission."""
    names = set(json_schemas())

    assert names == {f"{t}.v1.json" for t in ALL_FACTS} | {"submission.v1.json"}


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_schema_is_valid_and_matches_its_snapshot(name: str) -> None:
    """A contract change shows up as a snapshot diff to review (SAFETYMON_UPDATE_SNAPSHOTS=1)."""
    schema = json_schemas()[name]
    jsonschema.Draft202012Validator.check_schema(schema)
    path = SNAPSHOTS / name
    rendered = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    if os.environ.get("SAFETYMON_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(rendered)

    assert path.read_text() == rendered


@pytest.mark.parametrize("sample", sorted(SAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_golden_sample_decodes_and_round_trips(sample: Path) -> None:
    """Samples are never deleted: every version ever published must still decode, byte for byte."""
    raw = json.loads(sample.read_text())
    # The facts stream also carries the log's clock ticks (LOG_FACT_ADAPTER decodes both).
    adapter = SIGNAL_ADAPTER if raw["event_type"].startswith("signal") else LOG_FACT_ADAPTER

    fact = adapter.validate_python(raw)
    jsonschema.validate(raw, json_schemas()[f"{raw['event_type']}.v1.json"])

    assert canonical_bytes(fact.model_dump(mode="json")) == canonical_bytes(raw)


def test_schema_export_command_writes_one_file_per_type(tmp_path: Path) -> None:
    """`safetymon schema export DIR` writes every schema and the AsyncAPI document."""
    result = CliRunner().invoke(app, ["schema", "export", str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*json_schemas(), "asyncapi.json"])
