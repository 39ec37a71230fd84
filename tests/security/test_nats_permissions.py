"""The embedded nats-server of `safetymon up`/`demo` admits only its users, each to its subjects.

A real server per test, started as `safetymon up` starts it (`start_infrastructure`, the venv's
nats-server 2.15). Each refusal is checked next to a permitted twin on the same server, so a
test fails if the permission it relies on were missing rather than only the one it forbids.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors
import pytest
from nats.aio.client import Client

from safetymon.nats_auth import USERS, grants, render_authorization
from schemas import Subjects
from tests.conftest import SmtpServer
from tests.credentials import AUTH
from tests.factories import EXPECTED_PER_SITE, sae, unique
from tools.embedded import EmbeddedNats
from tools.stack import start_infrastructure, start_stack

pytestmark = pytest.mark.integration

_QUIET_S = 0.5  # how long "nothing arrived" is watched after a flush


@pytest.fixture
def namespace() -> str:
    return unique("perm").replace("-", "_").lower()


@pytest.fixture
def server(
    tmp_path: Path, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EmbeddedNats]:
    for key in ("SAFETYMON_NATS_URL", "SAFETYMON_NATS_USER", "SAFETYMON_NATS_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    embedded, _, _ = start_infrastructure(tmp_path / "data", smtp=False, namespace=namespace)
    assert embedded is not None
    yield embedded
    embedded.stop()


class _Client:
    """A connection as one user that records the server's asynchronous errors."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.nc = Client()

    async def connect(self, server: EmbeddedNats, user: str) -> _Client:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))

        options = server.client_settings(user).nats_connect_options()
        await self.nc.connect(
            server.url, error_cb=on_error, allow_reconnect=False, connect_timeout=3, **options
        )
        return self

    async def violation(self, what: str) -> bool:
        """Whether the server reported a permissions violation naming `what`."""
        await self.nc.flush()
        deadline = asyncio.get_running_loop().time() + 3
        while asyncio.get_running_loop().time() < deadline:
            if any(
                "permissions violation" in e.lower() and what.lower() in e.lower()
                for e in self.errors
            ):
                return True
            await asyncio.sleep(0.02)
        return False


@pytest.fixture
async def connect(server: EmbeddedNats) -> AsyncIterator[Any]:
    clients: list[_Client] = []

    async def as_user(user: str) -> _Client:
        client = await _Client().connect(server, user)
        clients.append(client)
        return client

    yield as_user
    for client in clients:
        with contextlib.suppress(nats.errors.Error):
            await client.nc.close()


async def _received(nc: Client, subject: str) -> list[bytes]:
    got: list[bytes] = []

    async def keep(msg: Any) -> None:
        got.append(msg.data)
        if msg.reply:
            await msg.respond(b"{}")

    await nc.subscribe(subject, cb=keep)
    await nc.flush()
    return got


async def _refusal(url: str, **credentials: str) -> str:
    """Why the server refused a connection ("" when it let it in)."""
    try:
        nc = await asyncio.wait_for(
            nats.connect(url, allow_reconnect=False, max_reconnect_attempts=1, **credentials), 10
        )
    except nats.errors.Error as exc:
        return str(exc)
    await nc.close()
    return ""


async def test_an_anonymous_client_is_refused(server: EmbeddedNats) -> None:
    admin = server.client_settings("admin")
    assert admin.nats_password is not None

    anonymous = await _refusal(server.url)
    wrong = await _refusal(server.url, user="notify", password="guess")  # noqa: S106 - wrong
    right = await _refusal(
        server.url, user="admin", password=admin.nats_password.get_secret_value()
    )

    assert "Authorization Violation" in anonymous
    assert "Authorization Violation" in wrong
    assert right == ""


async def test_notify_cannot_publish_a_retraction_but_rules_can(
    connect: Any, namespace: str
) -> None:
    """A forged signal_updated would be emailed as "[U0 SAE RETRACTED]"."""
    retraction = Subjects(namespace).signal_subject("signal_updated")
    admin = await connect("admin")
    js_rules = (await connect("rules")).nc.jetstream()
    stream = Subjects(namespace).signals_stream
    await js_rules.add_stream(name=stream, subjects=[Subjects(namespace).signals_filter])
    notify = await connect("notify")

    await notify.nc.publish(retraction, b'{"forged": true}')
    refused = await notify.violation(retraction)
    await js_rules.publish(retraction, b'{"genuine": true}', stream=stream)
    info = await admin.nc.jetstream().stream_info(stream)

    assert refused
    assert info.state.messages == 1  # only the rules user's


async def test_only_the_admin_user_can_acknowledge(connect: Any, namespace: str) -> None:
    ack = f"{namespace}.notify.ack"
    notify = await connect("notify")
    arrived = await _received(notify.nc, ack)

    refused = {}
    for user in ("ingest", "rules", "auditor", "report"):
        client = await connect(user)
        await client.nc.publish(ack, b'{"signal_id": "forged"}')
        refused[user] = await client.violation(ack)
    reply = await (await connect("admin")).nc.request(ack, b'{"signal_id": "real"}', timeout=3)

    assert refused == dict.fromkeys(("ingest", "rules", "auditor", "report"), True)
    assert arrived == [b'{"signal_id": "real"}']
    assert reply.data == b"{}"


async def test_rules_cannot_read_notify_subjects_or_other_inboxes(
    connect: Any, namespace: str
) -> None:
    rules = await connect("rules")

    for subject in (
        f"{namespace}.notify.>",
        f"{namespace}.notify.log",
        "_INBOX.>",
        "_INBOX_admin.>",
    ):
        await rules.nc.subscribe(subject)
    own = await rules.nc.subscribe(f"{namespace}.audit.rules.snapshot")
    await rules.nc.flush()

    for subject in (
        f"{namespace}.notify.>",
        f"{namespace}.notify.log",
        "_INBOX.>",
        "_INBOX_admin.",
    ):
        assert await rules.violation(subject), (subject, rules.errors)
    assert not any("audit.rules.snapshot" in e for e in rules.errors)
    await own.unsubscribe()


async def test_delivery_log_replies_reach_only_the_requester(connect: Any, namespace: str) -> None:
    """Replies travel on per-user inboxes; another user cannot listen on them."""
    log_subject = f"{namespace}.notify.log"
    notify = await connect("notify")
    await _received(notify.nc, log_subject)
    ingest = await connect("ingest")
    await ingest.nc.subscribe("_INBOX_admin.>")

    reply = await (await connect("admin")).nc.request(log_subject, b"{}", timeout=3)

    assert reply.data == b"{}"
    assert await ingest.violation("_INBOX_admin")


async def test_snapshot_requests_come_only_from_the_admin_and_the_auditor(
    connect: Any, namespace: str
) -> None:
    subject = f"{namespace}.audit.rules.snapshot"
    rules = await connect("rules")
    arrived = await _received(rules.nc, subject)

    for user in ("ingest", "notify", "report"):
        client = await connect(user)
        await client.nc.publish(subject, json.dumps({"directory": "/tmp"}).encode())  # noqa: S108
        assert await client.violation(subject), user
    for user in ("admin", "auditor"):
        await (await connect(user)).nc.request(subject, b"{}", timeout=3)

    assert arrived == [b"{}", b"{}"]


async def test_the_admin_cannot_steal_a_service_durable(connect: Any, namespace: str) -> None:
    """Pulling from notify's durable would hold back its signals; admin reads only ephemerally."""
    stream = Subjects(namespace).signals_stream
    admin = await connect("admin")

    await admin.nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.notify-router", b"1")
    await admin.nc.publish(f"$JS.API.CONSUMER.CREATE.{stream}.notify-router", b"{}")
    await admin.nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.demo-reader", b"1")
    await admin.nc.publish(f"$JS.API.CONSUMER.CREATE.{stream}.demo-reader", b"{}")

    assert await admin.violation(f"MSG.NEXT.{stream}.notify-router")
    assert await admin.violation(f"CREATE.{stream}.notify-router")
    assert not any("demo-reader" in e for e in admin.errors)


def test_credentials_are_private_and_differ_per_user(server: EmbeddedNats, tmp_path: Path) -> None:
    auth_dir = tmp_path / "data" / "nats-auth"
    files = sorted(auth_dir.iterdir())

    assert stat.S_IMODE(auth_dir.stat().st_mode) == 0o700
    assert [p.name for p in files] == sorted(f"{user}.password" for user in USERS)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    assert len({p.read_text() for p in files}) == len(USERS)
    config = server.store_dir / "nats-server.conf"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600


def test_a_restart_keeps_the_generated_passwords(tmp_path: Path, namespace: str) -> None:
    first = EmbeddedNats(tmp_path, namespace=namespace)
    first.start()
    first.stop()
    second = EmbeddedNats(tmp_path, namespace=namespace)
    second.start()
    second.stop()

    assert first.passwords == second.passwords
    assert set(first.passwords) == set(USERS)


def test_the_compose_nats_config_is_the_rendered_matrix() -> None:
    """deploy/nats/nats-server.conf holds the same users and grants, passwords from the env."""
    root = Path(__file__).resolve().parents[2]
    committed = (root / "deploy" / "nats" / "nats-server.conf").read_text()
    refs = {user: f"$SAFETYMON_NATS_{user.upper()}_PASSWORD" for user in USERS}

    assert render_authorization(grants("safetymon"), refs) in committed
    assert "sync_interval: always" in committed


async def test_the_services_work_end_to_end_each_as_its_own_user(
    stack_environment: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`up --service X`'s in-process path on the embedded server: an SAE is still emailed."""
    monkeypatch.delenv("SAFETYMON_NATS_URL")
    participant = unique("PERM")

    stack = await start_stack(data_dir=stack_environment, http_port=0)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{stack.http_port}", headers=AUTH
        ) as client:
            response = await client.post(
                "/v1/events", json=[sae(participant_id=participant, site_id="S01")]
            )
        mails = await smtp_server.recorder.wait_for(len(EXPECTED_PER_SITE["S01"]))
        await stack.settled(60)
        users = {name: svc.settings.nats_user for name, svc in stack.services.items()}  # type: ignore[attr-defined]
    finally:
        await stack.stop()

    assert response.json()["accepted"] == 1
    assert {r for m in mails for r in m.rcpt_tos} == EXPECTED_PER_SITE["S01"]
    assert users == {"ingest": "ingest", "rules": "rules", "notify": "notify"}
