"""The read-only HTTP audit API: auditor tokens only, the CLI's answers, every query logged."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kit.auth import Role, TokenStore, bearer_dependency
from kit.files import file_sha256
from schemas import GENESIS_HASH, canonical_bytes, chain_hash
from services.audit.adapters.http_api import build_audit_api
from services.audit.adapters.query_log import QueryLog, read_query_log
from services.audit.core.manifest import EVENT_LOG
from tests.factories import ROUTING, enrolment, lab, unique
from tests.unit.audit.bundles import write_bundle
from tests.unit.audit.logs import accepted_wires

# Each test serves a whole bundle written by the live services' own stores.
pytestmark = pytest.mark.slow

DAY1 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


@dataclass
class Api:
    client: TestClient
    root: Path
    log: Path
    auditor: dict[str, str]
    submitter: dict[str, str]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    pid = unique("P")
    wires = accepted_wires([
        (enrolment(participant_id=pid), DAY1),
        (lab(loinc="600-7", value=1, unit="1", participant_id=pid,
             occurred_at="2024-03-02T08:00:00Z"), DAY1 + timedelta(days=4)),
    ])  # fmt: skip
    root = tmp_path / "bundles"
    write_bundle(root / "b1", wires)
    store = TokenStore(tmp_path / "tokens.json")
    _, auditor = store.create("inspector-1", Role.auditor)
    _, submitter = store.create("lab-feed", Role.submitter, site="S01")
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING)
    log = tmp_path / "queries.jsonl"
    app = build_audit_api(
        root, require=bearer_dependency(store, Role.auditor), query_log=QueryLog(log),
        routing=routing,
    )  # fmt: skip
    with TestClient(app) as client:
        yield Api(client, root, log, _bearer(auditor), _bearer(submitter))


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_every_route_needs_an_auditor_token(api: Api) -> None:
    routes = ["/v1/audit/bundles", "/v1/audit/bundles/b1/verify", "/v1/audit/bundles/b1/replay",
              "/v1/audit/bundles/b1/reconcile", f"/v1/audit/bundles/b1/files/{EVENT_LOG}",
              "/v1/audit/bundles/b1/backtest?rule=INF-05&version=1"]  # fmt: skip

    anonymous = [api.client.get(route).status_code for route in routes]
    forged = [api.client.get(route, headers=_bearer("smt_forged")).status_code for route in routes]
    submitter = [api.client.get(route, headers=api.submitter).status_code for route in routes]
    auditor = [api.client.get(route, headers=api.auditor).status_code for route in routes]

    assert anonymous == [401] * len(routes)
    assert forged == [401] * len(routes)
    assert submitter == [403] * len(routes)
    assert auditor == [200] * len(routes)


def test_the_api_gives_the_cli_answers(api: Api) -> None:
    listing = api.client.get("/v1/audit/bundles", headers=api.auditor).json()
    verify = api.client.get("/v1/audit/bundles/b1/verify", headers=api.auditor).json()
    before = api.client.get(
        "/v1/audit/bundles/b1/replay", params={"as_of": "2024-03-04"}, headers=api.auditor
    ).json()
    after = api.client.get(
        "/v1/audit/bundles/b1/replay", params={"as_of": "2024-03-05"}, headers=api.auditor
    ).json()
    reconcile = api.client.get("/v1/audit/bundles/b1/reconcile", headers=api.auditor)
    download = api.client.get(f"/v1/audit/bundles/b1/files/{EVENT_LOG}", headers=api.auditor)

    assert [b["id"] for b in listing] == ["b1"]
    assert verify["ok"] is True
    assert [s["rule_id"] for s in before["signals"]] == []
    assert "INF-05" in [s["rule_id"] for s in after["signals"]]
    assert reconcile.status_code == 200
    assert reconcile.json()["ok"] is False  # this bundle's notify trail is empty
    assert {g["kind"] for g in reconcile.json()["gaps"]} == {"missing"}
    assert hashlib.sha256(download.content).hexdigest() == file_sha256(api.root / "b1" / EVENT_LOG)


def test_paths_outside_the_bundles_are_not_found(api: Api) -> None:
    (api.root / "secret.txt").write_text("not a bundle file")

    answers = [
        api.client.get(route, headers=api.auditor).status_code
        for route in ("/v1/audit/bundles/..%2Fsecret.txt/verify",
                      "/v1/audit/bundles/b1/files/..%2F..%2Ftokens.json",
                      "/v1/audit/bundles/b1/files/ingest.duckdb",
                      "/v1/audit/bundles/nope/replay")
    ]  # fmt: skip

    assert answers == [404, 404, 404, 404]


def test_a_tampered_bundle_is_verified_as_broken_and_never_replayed(api: Api) -> None:
    log = api.root / "b1" / EVENT_LOG
    log.write_bytes(log.read_bytes().replace(b"NCT01724398", b"NCT01724399", 1))

    verify = api.client.get("/v1/audit/bundles/b1/verify", headers=api.auditor)
    replay = api.client.get("/v1/audit/bundles/b1/replay", headers=api.auditor)

    assert verify.status_code == 200
    assert verify.json()["ok"] is False
    assert replay.status_code == 409
    assert "does not verify" in replay.json()["detail"]


def test_every_query_is_logged_with_who_what_and_when_in_a_chain(api: Api) -> None:
    api.client.get("/v1/audit/bundles/b1/replay", params={"as_of": "2024-03-04"},
                   headers=api.auditor)  # fmt: skip
    api.client.get("/v1/audit/bundles/b1/verify")
    api.client.get("/v1/audit/bundles/b1/verify", headers=api.submitter)

    entries = read_query_log(api.log)

    assert [(e["who"], e["path"], e["status"]) for e in entries] == [
        ("token:inspector-1", "/v1/audit/bundles/b1/replay", 200),
        (None, "/v1/audit/bundles/b1/verify", 401),
        (None, "/v1/audit/bundles/b1/verify", 403),
    ]
    assert entries[0]["query"] == {"as_of": "2024-03-04"}
    assert entries[0]["role"] == "auditor"
    assert datetime.fromisoformat(entries[0]["at"]) <= datetime.now(UTC)
    prev = GENESIS_HASH
    for seq, entry in enumerate(entries, start=1):
        assert (entry["seq"], entry["prev_hash"]) == (seq, prev)
        assert entry["hash"] == chain_hash(prev, canonical_bytes(entry))
        prev = entry["hash"]


def test_replays_over_http_start_from_the_servers_checkpoints(tmp_path: Path, api: Api) -> None:
    store = TokenStore(tmp_path / "tokens-ckpt.json")
    _, auditor = store.create("inspector-2", Role.auditor)
    checkpoints = tmp_path / "checkpoints"
    app = build_audit_api(
        api.root, require=bearer_dependency(store, Role.auditor),
        query_log=QueryLog(tmp_path / "q2.jsonl"), checkpoints=checkpoints,
    )  # fmt: skip
    with TestClient(app) as client:
        first = client.get("/v1/audit/bundles/b1/replay", headers=_bearer(auditor)).json()
        second = client.get("/v1/audit/bundles/b1/replay", headers=_bearer(auditor)).json()
    plain = api.client.get("/v1/audit/bundles/b1/replay", headers=api.auditor).json()

    assert [c["resumed_from_seq"] for c in first["checkpoints"]] == [None]
    assert [c["resumed_from_seq"] for c in second["checkpoints"]] == [plain["last_seq"]]
    assert second["signals"] == first["signals"] == plain["signals"]
    assert any(checkpoints.rglob("*.ckpt"))
