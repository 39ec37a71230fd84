"""The attack's "low" findings on the HTTP APIs: ingest, report and `audit serve`, in process.

Deep JSON, unauthenticated docs, out-of-range as-of times, symlinks in served directories,
absolute paths in error messages, and the body limits every app applies.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kit.auth import Role, TokenStore, bearer_dependency
from kit.http_limits import BodyLimits
from services.audit.adapters.http_api import build_audit_api
from services.audit.adapters.query_log import QueryLog
from services.ingest.adapters.http_api import build_http_app as build_ingest_api
from services.report.adapters.http_api import build_http_app as build_report_api
from tests.factories import enrolment, unique
from tests.unit.audit.bundles import write_bundle
from tests.unit.audit.logs import accepted_wires

DAY1 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
#: Valid ISO 8601, but its UTC instant lies before year 1: datetime cannot hold it.
OUT_OF_RANGE = "0001-01-01T00:00:00+14:00"


class _NoIngest:
    """Stands in for the use-case: these requests must be refused before reaching it."""

    async def submit(self, *args: Any, **kwargs: Any) -> list[Any]:
        raise AssertionError("the request reached the use-case")


@pytest.fixture
def tokens(tmp_path: Path) -> tuple[TokenStore, dict[str, str]]:
    store = TokenStore(tmp_path / "tokens.json")
    sites = {Role.submitter: "S01", Role.auditor: None, Role.dsmb: None, Role.investigator: "S01"}
    secrets = {role.value: store.create(f"t-{role.value}", role, site)[1]
               for role, site in sites.items()}  # fmt: skip
    return store, secrets


def _auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


# -- 1. deeply nested JSON ---------------------------------------------------------------


@pytest.mark.parametrize("depth", [100_000, 1_000])
def test_deeply_nested_json_is_answered_400_by_ingest(
    tokens: tuple[TokenStore, dict[str, str]], depth: int
) -> None:
    store, secrets = tokens
    api = build_ingest_api(_NoIngest(), object(), tokens=store)  # type: ignore[arg-type]
    client = TestClient(api, raise_server_exceptions=False)
    body = b'{"payload": ' + b"[" * depth + b"]" * depth + b"}"

    response = client.post("/v1/events", content=body, headers=_auth(secrets["submitter"]))

    assert response.status_code == 400
    assert "nested" in response.json()["error"]


# -- 2. documents need a token --------------------------------------------------------------


@pytest.fixture
def report_client(tmp_path: Path, tokens: tuple[TokenStore, dict[str, str]]) -> TestClient:
    root = tmp_path / "reports"
    root.mkdir()
    api = build_report_api(root=root, tokens=tokens[0], on_demand=None)
    return TestClient(api, raise_server_exceptions=False)


@pytest.fixture
def bundles(tmp_path: Path) -> Path:
    pid = unique("P")
    write_bundle(tmp_path / "bundles" / "b1", accepted_wires([(enrolment(participant_id=pid),
                                                                DAY1)]))  # fmt: skip
    return tmp_path / "bundles"


@pytest.fixture
def audit_client(
    bundles: Path, tmp_path: Path, tokens: tuple[TokenStore, dict[str, str]]
) -> TestClient:
    api = build_audit_api(
        bundles, require=bearer_dependency(tokens[0], Role.auditor),
        query_log=QueryLog(tmp_path / "queries.jsonl"),
    )  # fmt: skip
    return TestClient(api, raise_server_exceptions=False)


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_no_interactive_docs_on_report_and_audit(
    report_client: TestClient, audit_client: TestClient, path: str
) -> None:
    assert report_client.get(path).status_code == 404
    assert audit_client.get(path).status_code == 404


def test_report_openapi_needs_a_token(
    report_client: TestClient, tokens: tuple[TokenStore, dict[str, str]]
) -> None:
    secrets = tokens[1]

    assert report_client.get("/openapi.json").status_code == 401
    document = report_client.get("/openapi.json", headers=_auth(secrets["investigator"]))
    assert document.status_code == 200
    assert "/v1/reports" in document.json()["paths"]


def test_audit_openapi_needs_an_auditor_token(
    audit_client: TestClient, tokens: tuple[TokenStore, dict[str, str]]
) -> None:
    secrets = tokens[1]

    assert audit_client.get("/openapi.json").status_code == 401
    assert audit_client.get("/openapi.json", headers=_auth(secrets["dsmb"])).status_code == 403
    document = audit_client.get("/openapi.json", headers=_auth(secrets["auditor"]))
    assert document.status_code == 200
    assert "/v1/audit/bundles" in document.json()["paths"]


# -- 3. an as-of time out of range ----------------------------------------------------------


@pytest.mark.parametrize("query", ["replay", "reconcile"])
def test_audit_as_of_out_of_range_is_422_with_the_reason(
    audit_client: TestClient, tokens: tuple[TokenStore, dict[str, str]], query: str
) -> None:
    response = audit_client.get(
        f"/v1/audit/bundles/b1/{query}", params={"as_of": OUT_OF_RANGE},
        headers=_auth(tokens[1]["auditor"]),
    )  # fmt: skip

    assert response.status_code == 422
    assert "out of range" in response.json()["detail"]


def test_audit_backtest_bounds_out_of_range_are_422(
    audit_client: TestClient, tokens: tuple[TokenStore, dict[str, str]]
) -> None:
    response = audit_client.get(
        "/v1/audit/bundles/b1/backtest",
        params={"rule": "INF-05", "version": 1, "from": OUT_OF_RANGE},
        headers=_auth(tokens[1]["auditor"]),
    )

    assert response.status_code == 422
    assert "out of range" in response.json()["detail"]


def test_report_as_of_out_of_range_is_422_with_the_reason(
    tmp_path: Path, tokens: tuple[TokenStore, dict[str, str]]
) -> None:
    async def on_demand(as_of: datetime) -> dict[str, Any]:
        # What the real builder does first with the cut-off (and where it overflowed).
        return {"as_of": as_of.astimezone(UTC).isoformat()}

    api = build_report_api(root=tmp_path, tokens=tokens[0], on_demand=on_demand)
    client = TestClient(api, raise_server_exceptions=False)

    response = client.post(
        "/v1/reports/dsmb", params={"as_of": OUT_OF_RANGE}, headers=_auth(tokens[1]["dsmb"])
    )

    assert response.status_code == 422
    assert "out of range" in response.json()["detail"]


# -- 4. symlinks in served directories --------------------------------------------------------


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "secret.json"
    path.parent.mkdir()
    path.write_text('{"as_of": "2099-01-01", "secret": "outside the directory"}\n')
    return path


def test_audit_serve_refuses_a_symlinked_bundle_file(
    audit_client: TestClient, bundles: Path, secret_file: Path,
    tokens: tuple[TokenStore, dict[str, str]],
) -> None:  # fmt: skip
    log = bundles / "b1" / "ingest_heads.jsonl"
    log.unlink(missing_ok=True)
    log.symlink_to(secret_file)

    response = audit_client.get(
        "/v1/audit/bundles/b1/files/ingest_heads.jsonl", headers=_auth(tokens[1]["auditor"])
    )

    assert response.status_code == 404
    assert b"outside the directory" not in response.content


def test_audit_serve_refuses_a_symlinked_bundle_directory(
    audit_client: TestClient, bundles: Path, tokens: tuple[TokenStore, dict[str, str]]
) -> None:
    (bundles / "b2").symlink_to(bundles / "b1", target_is_directory=True)
    auditor = _auth(tokens[1]["auditor"])

    listed = audit_client.get("/v1/audit/bundles", headers=auditor)
    served = audit_client.get("/v1/audit/bundles/b2/files/manifest.json", headers=auditor)
    verified = audit_client.get("/v1/audit/bundles/b2/verify", headers=auditor)

    assert [b["id"] for b in listed.json()] == ["b1"]
    assert served.status_code == 404
    assert verified.status_code == 404


def test_report_files_refuse_symlinks(
    tmp_path: Path, secret_file: Path, tokens: tuple[TokenStore, dict[str, str]]
) -> None:
    root = tmp_path / "reports"
    report = root / str(uuid4())
    report.mkdir(parents=True)
    (report / "stolen.csv").symlink_to(secret_file)
    (report / "report.json").symlink_to(secret_file)
    linked = root / str(uuid4())
    linked.symlink_to(secret_file.parent, target_is_directory=True)
    client = TestClient(build_report_api(root=root, tokens=tokens[0], on_demand=None))
    dsmb = _auth(tokens[1]["dsmb"])

    listing = client.get("/v1/reports", headers=dsmb)
    file = client.get(f"/v1/reports/{report.name}/stolen.csv", headers=dsmb)
    through_dir = client.get(f"/v1/reports/{linked.name}/secret.json", headers=dsmb)

    assert listing.status_code == 200
    assert listing.json() == []
    assert file.status_code == 404
    assert through_dir.status_code == 404


# -- 7. no absolute paths in audit serve's errors ---------------------------------------------


def test_audit_serve_errors_name_bundles_relative_to_the_bundles_directory(
    audit_client: TestClient, bundles: Path, tokens: tuple[TokenStore, dict[str, str]]
) -> None:
    (bundles / "b1" / "manifest.json").write_text('{"not": "a manifest"}')
    auditor = _auth(tokens[1]["auditor"])

    answers = [
        audit_client.get(f"/v1/audit/bundles/b1/{query}", headers=auditor)
        for query in ("verify", "replay", "reconcile")
    ]

    for answer in answers:
        assert answer.status_code == 404
        detail = answer.json()["detail"]
        assert "b1/manifest.json" in detail
        assert str(bundles) not in detail
        assert str(bundles.resolve()) not in detail
        assert os.sep + "tmp" not in detail


# -- 6. every app reads bodies under the limits ----------------------------------------------


def _limited(api: FastAPI) -> bool:
    classes: list[object] = [m.cls for m in api.user_middleware]
    return BodyLimits in classes


def test_every_http_app_reads_bodies_under_the_limits(
    report_client: TestClient, audit_client: TestClient, tokens: tuple[TokenStore, dict[str, str]]
) -> None:
    ingest = build_ingest_api(_NoIngest(), object(), tokens=tokens[0])  # type: ignore[arg-type]

    assert _limited(ingest)
    assert _limited(report_client.app)  # type: ignore[arg-type]
    assert _limited(audit_client.app)  # type: ignore[arg-type]


def test_ingest_refuses_a_body_over_its_limit_with_413(
    tokens: tuple[TokenStore, dict[str, str]],
) -> None:
    store, secrets = tokens
    client = TestClient(build_ingest_api(_NoIngest(), object(), tokens=store))  # type: ignore[arg-type]
    body = json.dumps([{"pad": "x" * 1_000_000}] * 40).encode()

    response = client.post("/v1/events", content=body, headers=_auth(secrets["submitter"]))

    assert response.status_code == 413


def test_the_cli_as_of_out_of_range_exits_2_with_the_reason(bundles: Path) -> None:
    from typer.testing import CliRunner

    from safetymon.audit_cli import audit_app

    result = CliRunner().invoke(
        audit_app, ["replay", str(bundles / "b1"), "--as-of", OUT_OF_RANGE, "--json"]
    )

    assert result.exit_code == 2
    assert "out of range" in result.output
