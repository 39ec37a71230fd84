"""docker-compose.yml is valid against the Compose specification (no Docker engine here)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

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

    for name in ("ingest", "rules", "notify", "console"):
        env = services[name]["environment"]
        assert env["SAFETYMON_NATS_USER"] == name
        assert env["SAFETYMON_NATS_INBOX_PREFIX"] == f"_INBOX_{name}"
        assert env["SAFETYMON_NATS_PASSWORD"] == (
            f"${{SAFETYMON_NATS_{name.upper()}_PASSWORD:?set it in .env}}"
        )
    for user in ("INGEST", "RULES", "NOTIFY", "CONSOLE", "ADMIN", "AUDITOR", "REPORT"):
        key = f"SAFETYMON_NATS_{user}_PASSWORD"
        assert services["nats"]["environment"][key] == f"${{{key}:?set it in .env}}"


DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "safetymon.json"
#: Series suffixes Prometheus adds to a counter's or histogram's name.
_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def _panel_metrics(dashboard: dict[str, Any]) -> set[str]:
    """Every `safetymon_*` series a panel of the dashboard queries."""
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    return {name for expr in exprs for name in re.findall(r"\bsafetymon_[a-z0-9_]+", expr)}


def _defined_in_code(series: str) -> bool:
    """The metric behind `series` is created in kit/ or services/ (its quoted name)."""
    names = {series} | {series.removesuffix(s) for s in _SUFFIXES if series.endswith(s)}
    sources = [*(ROOT / "kit").glob("*.py"), *(ROOT / "services").glob("*/adapters/*.py")]
    text = "\n".join(path.read_text() for path in sources)
    return any(f'"{name}"' in text for name in names)


def test_prometheus_and_grafana_run_with_the_repo_s_config_on_loopback_ports() -> None:
    """Prometheus scrapes each service where compose serves /metrics; Grafana is provisioned."""
    services = _compose()["services"]
    assert isinstance(services, dict)
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())

    targets = {
        job["job_name"]: job["static_configs"][0]["targets"][0] for job in scrape["scrape_configs"]
    }
    rules_port = services["rules"]["environment"]["SAFETYMON_METRICS_PORT"]
    notify_port = services["notify"]["environment"]["SAFETYMON_NOTIFY_HTTP_PORT"]
    assert targets == {
        "ingest": "ingest:8080",
        "rules": f"rules:{rules_port}",
        "notify": f"notify:{notify_port}",
    }
    assert all(
        job["authorization"]["credentials_file"] == "/tmp/metrics.token"  # noqa: S108 - in the container
        for job in scrape["scrape_configs"]
    )
    prometheus, grafana = services["prometheus"], services["grafana"]
    assert (
        "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro"
        in (prometheus["volumes"])
    )
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    assert all(p.startswith("127.0.0.1:") for p in prometheus["ports"] + grafana["ports"])


def test_the_dashboard_parses_and_queries_only_metrics_the_code_defines() -> None:
    """Each panel's metric exists (a renamed metric would leave a panel silently empty)."""
    dashboard = json.loads(DASHBOARD.read_text())

    queried = _panel_metrics(dashboard)

    assert {
        "safetymon_notify_alert_latency_seconds_bucket",
        "safetymon_consumer_pending",
        "safetymon_ingest_facts_accepted_total",
        "safetymon_ingest_facts_rejected_total",
        "safetymon_notify_emails_sent_total",
        "safetymon_notify_emails_failed_total",
        "safetymon_notify_oldest_unacknowledged_u0_seconds",
    } <= queried
    assert sorted(m for m in queried if not _defined_in_code(m)) == []


def test_the_metric_check_can_fail() -> None:
    """A name no code defines is reported."""
    assert not _defined_in_code("safetymon_notify_emails_lost_total")
