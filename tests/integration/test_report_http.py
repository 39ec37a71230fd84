"""The DSMB's HTTP API: bearer tokens of the dsmb role, on-demand builds, issued files."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kit.auth import Role, TokenStore
from services.report.adapters.http_api import build_http_app
from services.report.main import build_app
from tests.unit.report.fixture_feed import AS_OF, build_fixture_log

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def event_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fixture_log(tmp_path_factory.mktemp("log"))


@pytest.fixture
def client(tmp_path: Path, event_log: Path) -> tuple[TestClient, dict[str, str]]:
    tokens = TokenStore(tmp_path / "tokens.json")
    secrets = {role: tokens.create(f"t-{role}", Role(role), site)[1]
               for role, site in (("dsmb", None), ("investigator", "S01"))}  # fmt: skip
    service = build_app()

    async def on_demand(as_of: datetime) -> dict[str, Any]:
        return await asyncio.to_thread(service.build_into, event_log, as_of=as_of, root=tmp_path)

    api = build_http_app(root=tmp_path, tokens=tokens, on_demand=on_demand)
    return TestClient(api), secrets


def _auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_only_the_dsmb_role_is_served(client: tuple[TestClient, dict[str, str]]) -> None:
    http, secrets = client

    assert http.get("/v1/reports").status_code == 401
    assert http.get("/v1/reports", headers=_auth(secrets["investigator"])).status_code == 403
    assert http.get("/v1/reports", headers=_auth(secrets["dsmb"])).json() == []


def test_on_demand_build_is_listed_and_its_files_served(
    client: tuple[TestClient, dict[str, str]],
) -> None:
    http, secrets = client
    dsmb = _auth(secrets["dsmb"])

    built = http.post("/v1/reports/dsmb", params={"as_of": AS_OF.isoformat()}, headers=dsmb)

    assert built.status_code == 200, built.text
    document = built.json()
    assert document["log_position"] == 48
    assert document["stops_triggered"] == ["STOP-03/B"]
    assert http.get("/v1/reports", headers=dsmb).json() == [document]
    page = http.get(f"/v1/reports/{document['report_id']}/dsmb_report.html", headers=dsmb)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert document["chain_head"] in page.text
    table = http.get(f"/v1/reports/{document['report_id']}/stopping_rules.csv", headers=dsmb)
    assert table.text.startswith("rule,arm,window_days,")
    assert http.get(f"/v1/reports/{document['report_id']}/..%2Ftokens.json",
                    headers=dsmb).status_code == 404  # fmt: skip
    assert http.get("/v1/reports/not-a-uuid/report.json", headers=dsmb).status_code == 404


def test_an_as_of_without_zone_is_refused(client: tuple[TestClient, dict[str, str]]) -> None:
    http, secrets = client

    answer = http.post("/v1/reports/dsmb", params={"as_of": "2024-04-15T00:00:00"},
                       headers=_auth(secrets["dsmb"]))  # fmt: skip

    assert answer.status_code == 422
