"""Access control of the ingest HTTP API against a running service: roles, sites, revocation.

The role matrix below is the specification: every (role, endpoint) pair is requested for
real and must be allowed or denied exactly as listed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import httpx
import nats
import pytest
import pytest_asyncio
import structlog.testing
from pydantic import SecretStr
from typer.testing import CliRunner

from kit.auth import Role, TokenStore
from safetymon.cli import app
from schemas import Subjects
from services.ingest.config import Settings
from services.ingest.main import build_app
from services.ingest.service import IngestService
from tests.credentials import AUTH, TEST_TOKEN
from tests.factories import enrolment, lab, unique

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SITE = "S01"
OTHER_SITE = "S02"
#: Per role: the token's site, if the role is per site.
ROLES: dict[str, str | None] = {
    "submitter": SITE,
    "safety_officer": None,
    "investigator": SITE,
    "dsmb": None,
    "auditor": None,
    "admin": None,
}
ENDPOINTS = (
    "GET /health",
    "POST /v1/events",
    "GET /v1/log/head",
    "POST /v1/audit/snapshot",
    "GET /v1/audit/snapshots/{id}/event_log.parquet",
    "GET /openapi.json",
)
_ALLOWED: dict[str, set[str]] = {
    "GET /health": {*ROLES, "anonymous", "revoked", "unknown"},
    "POST /v1/events": {"submitter", "admin"},
    "GET /v1/log/head": {"submitter", "auditor", "admin"},
    "POST /v1/audit/snapshot": {"auditor", "admin"},
    "GET /v1/audit/snapshots/{id}/event_log.parquet": {"auditor", "admin"},
    "GET /openapi.json": set(ROLES),
}
CALLERS = (*ROLES, "anonymous", "revoked", "unknown")
#: caller x endpoint -> expected status class: "allowed", 401 or 403.
MATRIX: dict[tuple[str, str], str | int] = {
    (caller, endpoint): "allowed"
    if caller in _ALLOWED[endpoint]
    else (403 if caller in ROLES else 401)
    for caller in CALLERS
    for endpoint in ENDPOINTS
}


@dataclass
class Running:
    service: IngestService
    tokens: TokenStore
    secrets: dict[str, str]
    snapshot_id: str
    nats_url: str
    namespace: str

    def client(self, secret: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.service.http_port}", headers=headers, timeout=30
        )

    async def head(self) -> int:
        async with self.client(TEST_TOKEN) as client:
            return int((await client.get("/v1/log/head")).json()["seq"])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(
    tmp_path_factory: pytest.TempPathFactory, nats_url_module: str
) -> AsyncIterator[Running]:
    """One ingest service for the module, with a token per role and one revoked token."""
    data = tmp_path_factory.mktemp("auth")
    namespace = f"t{uuid4().hex[:12]}"
    tokens = TokenStore(data / "tokens.json")
    secrets = {
        role: tokens.create(f"{role}-1", Role(role), site)[1] for role, site in ROLES.items()
    }
    revoked, secrets["revoked"] = tokens.create("revoked-1", Role.admin)
    tokens.revoke(revoked.token_id)
    secrets["unknown"] = "smt_" + uuid4().hex
    service = build_app(
        Settings(
            data_dir=data,
            nats_url=nats_url_module,
            namespace=namespace,
            http_port=0,
            bootstrap_token=SecretStr(TEST_TOKEN),
        )
    )
    await service.start()
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{service.http_port}", headers=AUTH
        ) as client:
            snapshot = (await client.post("/v1/audit/snapshot")).json()
        yield Running(service, tokens, secrets, snapshot["snapshot_id"], nats_url_module, namespace)
    finally:
        await service.stop()
        nc = await nats.connect(nats_url_module)
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await nc.jetstream().delete_stream(Subjects(namespace).facts_stream)
        await nc.close()


@pytest.fixture(scope="module")
def nats_url_module() -> str:
    from tests.conftest import NATS_URL

    return NATS_URL


async def _call(running: Running, endpoint: str, secret: str | None) -> httpx.Response:
    method, path = endpoint.split(" ", 1)
    path = path.replace("{id}", running.snapshot_id)
    body = None
    if endpoint == "POST /v1/events":
        body = enrolment(participant_id=unique("AUTH"), site_id=SITE)
    async with running.client(secret) as client:
        return await client.request(method, path, json=body)


@pytest.mark.parametrize(("caller", "endpoint"), list(MATRIX), ids=str)
async def test_role_matrix(running: Running, caller: str, endpoint: str) -> None:
    """Each caller may reach exactly the endpoints the matrix allows."""
    secret = None if caller == "anonymous" else running.secrets[caller]

    response = await _call(running, endpoint, secret)

    expected = MATRIX[(caller, endpoint)]
    if expected == "allowed":
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == expected, response.text
    if expected == 401:
        assert response.headers["www-authenticate"].startswith('Bearer realm="safetymon"')


async def _post(
    running: Running, caller: str, items: object, headers: dict[str, str] | None = None
) -> httpx.Response:
    async with running.client(running.secrets.get(caller, TEST_TOKEN)) as client:
        return await client.post("/v1/events", json=items, headers=headers)


async def _enrol_elsewhere(running: Running) -> str:
    participant = unique("P2")
    item = enrolment(participant_id=participant, site_id=OTHER_SITE)
    response = await _post(running, "admin", item)
    assert response.status_code == 200, response.text
    return participant


async def test_a_submitter_posting_another_sites_participant_gets_403_and_nothing_is_stored(
    running: Running,
) -> None:
    """Site 1's submitter, a batch ending in a site-2 participant: refused whole, log unchanged."""
    other = await _enrol_elsewhere(running)
    mine = unique("P1")
    own = [enrolment(participant_id=mine, site_id=SITE), lab(participant_id=mine, site_id=SITE)]
    before = await running.head()

    refused = await _post(running, "submitter", [*own, lab(participant_id=other, site_id=SITE)])
    after = await running.head()
    retried = await _post(running, "submitter", own)

    assert refused.status_code == 403
    reason = f"is not a participant enrolled at site {SITE!r}"
    assert refused.json()["forbidden"] == [
        {"index": 2, "field": "participant_id", "reason": reason}
    ]
    assert "nothing was stored" in refused.json()["error"]
    assert after == before
    # Accepted, not duplicates: the own-site items of the refused batch were never stored.
    assert (retried.json()["accepted"], retried.json()["duplicate"]) == (2, 0)


@pytest.mark.parametrize(
    "make",
    [
        lambda other: lab(participant_id=other, site_id=OTHER_SITE),
        lambda other: enrolment(participant_id=other, site_id=SITE),
        lambda other: lab(participant_id=unique("NEW"), site_id=SITE),
        lambda other: enrolment(participant_id=unique("NEW"), site_id=OTHER_SITE),
    ],
    ids=["other-site", "re-enrol-other-sites-participant", "never-enrolled", "enrol-at-other-site"],
)
async def test_every_way_out_of_the_site_is_403(running: Running, make) -> None:
    other = await _enrol_elsewhere(running)
    before = await running.head()

    response = await _post(running, "submitter", [make(other)])

    assert response.status_code == 403, response.text
    assert await running.head() == before


async def test_an_admin_may_post_for_any_site(running: Running) -> None:
    other = await _enrol_elsewhere(running)

    response = await _post(running, "admin", [lab(participant_id=other, site_id=OTHER_SITE)])

    assert response.json()["accepted"] == 1, response.text


async def test_a_submitters_invalid_own_site_item_still_gets_its_specific_reason(
    running: Running,
) -> None:
    mine = unique("P1")

    response = await _post(
        running,
        "submitter",
        [enrolment(participant_id=mine, site_id=SITE), lab(participant_id=mine, unit="furlongs")],
    )

    assert response.status_code == 207
    assert response.json()["results"][1]["errors"][0]["field"] == "payload.result.unit"


async def test_the_actor_is_the_token_not_a_header(running: Running) -> None:
    """Every use is attributed: the log's actor names the token, whatever headers claim."""
    mine = unique("P1")

    response = await _post(
        running,
        "submitter",
        [enrolment(participant_id=mine, site_id=SITE)],
        headers={"X-Safetymon-Actor": "someone-else"},
    )
    await running.service.drained(10)

    event_id = response.json()["results"][0]["event_id"]
    assert (await _published_actor(running, event_id)) == "token:submitter-1"


async def test_tokens_created_and_revoked_while_running_take_effect_at_once(
    running: Running,
) -> None:
    principal, secret = running.tokens.create(unique("late"), Role.auditor)
    async with running.client(secret) as client:
        before = await client.get("/v1/log/head")
        running.tokens.revoke(principal.token_id)
        after = await client.get("/v1/log/head")

    assert before.status_code == 200
    assert after.status_code == 401


async def _published_actor(running: Running, event_id: str) -> str:
    nc = await nats.connect(running.nats_url)
    try:
        js = nc.jetstream()
        stream = Subjects(running.namespace).facts_stream
        count = (await js.stream_info(stream)).state.messages
        for seq in range(count, 0, -1):
            message = await js.get_msg(stream, seq)
            body = json.loads(message.data)
            if body["event_id"] == event_id:
                return str(body["actor"])
    finally:
        await nc.close()
    raise AssertionError(f"event {event_id} was not published")


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
async def test_no_unauthenticated_documentation_pages(running: Running, path: str) -> None:
    async with running.client() as client:
        response = await client.get(path)

    assert response.status_code == 404


async def test_the_ingest_command_sends_safetymon_token_and_says_when_it_is_refused(
    running: Running, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps(enrolment(participant_id=unique("CLI"), site_id=SITE)) + "\n")
    url = f"http://127.0.0.1:{running.service.http_port}"
    monkeypatch.delenv("SAFETYMON_TOKEN", raising=False)

    command = ["ingest", str(feed), "--url", url]
    # The service logs in this process: keep its lines out of the command's stdout.
    with structlog.testing.capture_logs():
        refused = await asyncio.to_thread(CliRunner().invoke, app, command)
        monkeypatch.setenv("SAFETYMON_TOKEN", running.secrets["submitter"])
        sent = await asyncio.to_thread(CliRunner().invoke, app, command)

    assert refused.exit_code != 0
    assert "401" in str(refused.exception)
    assert "SAFETYMON_TOKEN" in str(refused.exception)
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.stdout)["accepted"] == 1
