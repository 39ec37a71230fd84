"""docker-compose.yml is valid against the Compose specification (no Docker engine here)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT.parent / "shared" / "data" / "compose-spec" / "compose-spec.json"


def _compose() -> dict[str, object]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_validates_against_the_compose_spec() -> None:
    """The deployment file is a valid Compose document."""
    schema = json.loads(SPEC.read_text())

    jsonschema.Draft7Validator(schema).validate(_compose())


def test_compose_runs_nats_mailpit_and_the_three_services_with_own_volumes() -> None:
    """NATS with JetStream, Mailpit, and one DuckDB volume per service (one writer per file)."""
    services = _compose()["services"]
    assert isinstance(services, dict)

    assert {"nats", "mailpit", "ingest", "rules", "notify"} <= set(services)
    assert "-js" in services["nats"]["command"]
    volumes = {
        name: services[name]["volumes"][0].split(":")[0] for name in ("ingest", "rules", "notify")
    }
    assert len(set(volumes.values())) == 3


def test_compose_schema_rejects_a_broken_file() -> None:
    """The check can fail: a service with an unknown key is refused."""
    broken = _compose()
    broken["services"]["nats"]["imagee"] = "typo"  # type: ignore[index]

    try:
        jsonschema.Draft7Validator(json.loads(SPEC.read_text())).validate(broken)
    except jsonschema.ValidationError as exc:
        assert "imagee" in exc.message
    else:
        raise AssertionError("a misspelt key passed the Compose schema")
