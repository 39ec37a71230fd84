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
    config = (ROOT / "deploy" / "nats" / "nats-server.conf").read_text()
    assert "jetstream {" in config  # the server's -c file turns JetStream on
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


def test_nats_is_not_published_to_the_host_and_loads_the_permission_config() -> None:
    """Only the compose network reaches NATS; the server runs deploy/nats/nats-server.conf."""
    nats = _compose()["services"]["nats"]  # type: ignore[index]

    assert "ports" not in nats
    assert nats["command"] == ["-c", "/etc/nats/nats-server.conf"]
    assert "./deploy/nats/nats-server.conf:/etc/nats/nats-server.conf:ro" in nats["volumes"]
    config = (ROOT / "deploy" / "nats" / "nats-server.conf").read_text()
    assert "sync_interval: always" in config
    assert "authorization {" in config


def test_each_service_connects_as_its_own_nats_user_with_a_password_from_the_env() -> None:
    """No password in the file: `${...:?}` makes compose refuse to start without one."""
    services = _compose()["services"]
    assert isinstance(services, dict)

    for name in ("ingest", "rules", "notify"):
        env = services[name]["environment"]
        assert env["SAFETYMON_NATS_USER"] == name
        assert env["SAFETYMON_NATS_INBOX_PREFIX"] == f"_INBOX_{name}"
        assert env["SAFETYMON_NATS_PASSWORD"] == (
            f"${{SAFETYMON_NATS_{name.upper()}_PASSWORD:?set it in .env}}"
        )
    for user in ("INGEST", "RULES", "NOTIFY", "ADMIN", "AUDITOR", "REPORT"):
        key = f"SAFETYMON_NATS_{user}_PASSWORD"
        assert services["nats"]["environment"][key] == f"${{{key}:?set it in .env}}"
