"""Acknowledgement, escalation, failover and outage recovery of the running notify service.

Real NATS JetStream, a real DuckDB file, aiosmtpd on a free port and the notify HTTP
endpoint on a free port; escalation delays are configured to about a second.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import nats
import pytest
from aiosmtpd.controller import Controller

from kit.auth import Role as TokenRole
from kit.auth import TokenStore
from schemas import Role, SignalRaised, Subjects, Urgency
from services.notify.config import Settings
from services.notify.core.ack import AckClaims, sign_ack
from services.notify.main import Deps, build_app
from services.notify.service import NotifyService
from tests.conftest import ReceivedMail, free_port
from tests.unit.notify.factories import make_signal

pytestmark = pytest.mark.integration

SO = "so@trial.example"
BACKUP = "backup@trial.example"
CHAIR = "chair@dsmb.example"
PI_A = "pi.a@site-a.example"
PI_B = "pi.b@site-b.example"
SECRET = "test-ack-secret-0123456789abcdef"  # noqa: S105 - a test key, not a credential
ROUTING = f"""
version = 1
[roles.safety_officer]
addresses = ["{SO}"]
urgencies = ["U0", "U1", "U2"]
[roles.backup]
addresses = ["{BACKUP}"]
urgencies = ["U0"]
[roles.dsmb_chair]
addresses = ["{CHAIR}"]
urgencies = ["U0"]
[sites.SA.investigator]
addresses = ["{PI_A}"]
urgencies = ["U0", "U1"]
[sites.SB.investigator]
addresses = ["{PI_B}"]
urgencies = ["U0", "U1"]
"""
TOKEN = re.compile(r"(http://\S+/v1/ack\?token=(\S+))")


@dataclass
class Inbox:
    """aiosmtpd handler: refuses listed recipients with 550, records what it accepts."""

    refuse: set[str] = field(default_factory=set)
    received: list[ReceivedMail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, options) -> str:  # noqa: N802 - aiosmtpd hook
        if address in self.refuse:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd hook
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        with self.lock:
            self.received.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), content))
        return "250 2.0.0 Ok: queued as INBOX" + uuid4().hex[:6]

    def to(self, address: str) -> list[ReceivedMail]:
        with self.lock:
            return [m for m in self.received if address in m.rcpt_tos]

    def all(self) -> list[ReceivedMail]:
        with self.lock:
            return list(self.received)


@dataclass
class Server:
    port: int
    inbox: Inbox
    controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server(free_port(), Inbox())
    running.start()
    yield running
    running.stop()


@pytest.fixture
def settings(tmp_path: Path, nats_url: str, namespace: str, server: Server) -> Settings:
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING, encoding="utf-8")
    return Settings(
        data_dir=tmp_path / "data", nats_url=nats_url, namespace=namespace,
        smtp_host="127.0.0.1", smtp_port=server.port, smtp_timeout=5.0,
        mail_from="safetymon@trial.example", routing=routing,
        retry_base_seconds=0.1, retry_cap_seconds=0.5, notify_http_port=0,
        ack_secret=SECRET, escalation_minutes=1.5 / 60, escalation_tick_seconds=0.1,
    )  # fmt: skip


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Settings], Awaitable[NotifyService]]]:
    started: list[NotifyService] = []

    async def _start(settings: Settings) -> NotifyService:
        service = build_app(settings)
        await service.start()
        started.append(service)
        return service

    yield _start
    for service in started:
        await service.stop()


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[nats.js.JetStreamContext]:
    nc = await nats.connect(nats_url)
    yield nc.jetstream()
    await nc.close()


async def publish(js, namespace: str, signal: SignalRaised) -> None:
    subjects = Subjects(namespace)
    await js.publish(
        subjects.signal_subject(signal.event_type),
        json.dumps(signal.model_dump(mode="json")).encode(),
        stream=subjects.signals_stream, headers={"Nats-Msg-Id": str(signal.event_id)},
    )  # fmt: skip


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if await result if asyncio.iscoroutine(result) else result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def u0(site: str = "SA", **payload) -> SignalRaised:
    recipients = (Role.INVESTIGATOR, Role.SAFETY_OFFICER)
    return make_signal(site_id=site, recipients=recipients, **payload)


def ack_url(mail: ReceivedMail) -> str:
    text = message_from_bytes(mail.raw, policy=policy.default).get_body(("plain",)).get_content()
    found = TOKEN.search(text)
    assert found, "no acknowledgement link in the email"
    return found.group(1)


async def post_ack(service: NotifyService, token: str, reason: str = "on it") -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http_port}") as client:
        return await client.post("/v1/ack", data={"token": token, "reason": reason})


async def events(service: NotifyService, signal_id: UUID) -> list[str]:
    return [row["event_type"] for row in await service.delivery_log(signal_id=signal_id)]


async def test_ack_link_works_once_and_stops_escalation(
    settings, js, namespace, server, running
) -> None:
    service = await running(settings.model_copy(update={"escalation_minutes": 3 / 60}))
    signal = u0()
    await publish(js, namespace, signal)
    await eventually(lambda: len(server.inbox.to(SO)) == 1)
    url = ack_url(server.inbox.to(SO)[0])
    token = url.split("token=")[1]

    async with httpx.AsyncClient() as client:
        form = await client.get(url)
    first = await post_ack(service, token, reason="calling the site now")
    second = await post_ack(service, token)
    await asyncio.sleep(3.5)  # past the escalation delay: nothing may escalate now

    assert form.status_code == 200
    assert "Acknowledge" in form.text
    assert first.status_code == 200, first.text
    assert second.status_code == 409
    log = await service.delivery_log(signal_id=signal.event_id)
    [ack] = [row for row in log if row["event_type"] == "alert_acknowledged"]
    assert ack["by"] == f"safety_officer {SO}"
    assert ack["reason"] == "calling the site now"
    assert "alert_escalated" not in [row["event_type"] for row in log]
    assert server.inbox.to(BACKUP) == []
    assert (await service.verify_audit()).ok


async def test_forged_and_expired_tokens_are_rejected(
    settings, js, namespace, server, running
) -> None:
    service = await running(settings)
    signal = u0()
    await publish(js, namespace, signal)
    await eventually(lambda: len(server.inbox.to(SO)) == 1)
    token = ack_url(server.inbox.to(SO)[0]).split("token=")[1]
    [row] = [r for r in await service.notifications(signal.event_id) if r["address"] == SO]
    claims = AckClaims(UUID(row["notification_id"]), signal.event_id, datetime.now(UTC))
    forged = sign_ack(
        AckClaims(claims.notification_id, claims.signal_id, claims.expires_at + timedelta(days=1)),
        key=b"not-the-key",
    )
    expired = sign_ack(
        AckClaims(claims.notification_id, claims.signal_id, claims.expires_at - timedelta(hours=1)),
        key=SECRET.encode(),
    )
    altered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")

    responses = [await post_ack(service, t) for t in (forged, expired, altered, "")]

    assert [r.status_code for r in responses] == [403, 410, 403, 403]
    assert "alert_acknowledged" not in await events(service, signal.event_id)
    assert (await post_ack(service, token)).status_code == 200


async def test_unacknowledged_u0_escalates_to_backup_and_so_then_dsmb_chair(
    settings, js, namespace, server, running
) -> None:
    service = await running(settings)
    signal = u0()

    await publish(js, namespace, signal)
    await eventually(lambda: len(server.inbox.to(CHAIR)) == 1, timeout=20)

    backup = server.inbox.to(BACKUP)
    assert len(backup) == 1
    assert len(server.inbox.to(SO)) == 2  # the alert, then the level-1 escalation
    first = message_from_bytes(server.inbox.to(SO)[0].raw, policy=policy.default)
    escalated = message_from_bytes(backup[0].raw, policy=policy.default)
    assert escalated["Subject"].startswith("[U0 SAE ESCALATED L1] unacknowledged")
    assert escalated["In-Reply-To"] == first["Message-ID"]
    log = await service.delivery_log(signal_id=signal.event_id)
    levels = [(r["level"], r["to_roles"]) for r in log if r["event_type"] == "alert_escalated"]
    assert levels == [(1, ["backup", "safety_officer"]), (2, ["dsmb_chair"])]


async def test_cli_style_acknowledgement_is_recorded_with_who_and_why(
    settings, js, namespace, server, running
) -> None:
    _, secret = TokenStore(settings.tokens_path).create("so-duty", TokenRole.safety_officer)
    service = await running(settings.model_copy(update={"escalation_minutes": 60.0}))
    signal = u0()
    await publish(js, namespace, signal)
    await eventually(lambda: len(server.inbox.to(SO)) == 1)

    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{service.http_port}",
        headers={"Authorization": f"Bearer {secret}"},
    ) as client:
        ok = await client.post(f"/v1/signals/{signal.event_id}/ack", json={"reason": "reviewed"})
        again = await client.post(f"/v1/signals/{signal.event_id}/ack", json={"reason": "late"})
        unknown = await client.post(f"/v1/signals/{uuid4()}/ack", json={"reason": "y"})
        by_participant = await client.get("/v1/notifications", params={"participant": "P-0042"})

    assert ok.status_code == 200
    assert ok.json()["by"] == "token:so-duty"  # who acknowledged is the token, not a claim
    assert again.status_code == 409
    assert unknown.status_code == 404
    kinds = [row["event_type"] for row in by_participant.json()]
    assert kinds.count("alert_acknowledged") == 1
    assert "notification_sent" in kinds


async def test_permanent_refusal_fails_over_to_backup_and_alarms_the_safety_officer(
    settings, js, namespace, server, running
) -> None:
    server.inbox.refuse.add(PI_A)
    service = await running(settings.model_copy(update={"escalation_minutes": 60.0}))
    signal = u0()

    await publish(js, namespace, signal)
    await eventually(lambda: len(server.inbox.to(SO)) == 2 and len(server.inbox.to(BACKUP)) == 1)
    await eventually(lambda: _settled(service))

    subjects = sorted(
        message_from_bytes(m.raw, policy=policy.default)["Subject"] for m in server.inbox.to(SO)
    )
    assert subjects[0].startswith(f"[U0 DELIVERY FAILED] investigator {PI_A}")
    backup = message_from_bytes(server.inbox.to(BACKUP)[0].raw, policy=policy.default)
    text = backup.get_body(("plain",)).get_content()
    assert "delivery to the investigator failed permanently" in text
    rows = {r["address"]: r for r in await service.notifications(signal.event_id)}
    assert rows[PI_A]["status"] == "failed"
    assert rows[PI_A]["attempts"] == 1
    assert server.inbox.to(PI_A) == []


async def _settled(service: NotifyService) -> bool:
    return await service.unsent_count() == 0


async def test_smtp_outage_ends_with_every_alert_delivered_once(
    settings, js, namespace, server, running
) -> None:
    server.stop()
    service = await running(settings.model_copy(update={"escalation_minutes": 60.0}))
    sites = ["SA", "SB"] * 3
    signals = [u0(site=site, participant_id=f"P-{i:04d}") for i, site in enumerate(sites)]
    for signal in signals:
        await publish(js, namespace, signal)
    await eventually(lambda: _intended(service, 12))
    await asyncio.sleep(1.5)  # several retries against the stopped server

    server.start()
    await eventually(lambda: _settled(service), timeout=20)
    await asyncio.sleep(0.5)

    got = [(m.rcpt_tos[0], _header(m, "X-Safetymon-Signal-Id")) for m in server.inbox.all()]
    expected = [(SO, str(s.event_id)) for s in signals] + [
        (PI_A if s.site_id == "SA" else PI_B, str(s.event_id)) for s in signals
    ]
    assert sorted(got) == sorted(expected)
    rows = await service.notifications()
    assert {r["status"] for r in rows} == {"sent"}
    # The outage was real: the sender tried during it and recorded the failures.
    assert sum(r["attempts"] >= 2 for r in rows) >= 1
    assert all("Connect" in r["last_error"] for r in rows if r["attempts"] >= 2)


async def _intended(service: NotifyService, count: int) -> bool:
    return len(await service.notifications()) == count


def _header(mail: ReceivedMail, name: str) -> str:
    return str(message_from_bytes(mail.raw, policy=policy.default)[name])


async def test_investigator_of_site_a_never_receives_site_b_alerts(
    settings, js, namespace, server, running
) -> None:
    service = await running(settings.model_copy(update={"escalation_minutes": 60.0}))
    a, b = u0(site="SA", participant_id="P-0101"), u0(site="SB", participant_id="P-0202")
    u1 = u0(site="SB", participant_id="P-0203", urgency=Urgency.U1)

    for signal in (a, b, u1):
        await publish(js, namespace, signal)
    await eventually(lambda: len(server.inbox.all()) == 6)
    await eventually(lambda: _settled(service))

    to_a = {_header(m, "X-Safetymon-Signal-Id") for m in server.inbox.to(PI_A)}
    to_b = {_header(m, "X-Safetymon-Signal-Id") for m in server.inbox.to(PI_B)}
    assert to_a == {str(a.event_id)}
    assert to_b == {str(b.event_id), str(u1.event_id)}


async def test_cli_ack_and_delivery_log_go_through_the_running_service(  # noqa: PLR0917 - pytest fixtures
    settings, js, namespace, server, running, nats_url, tmp_path
) -> None:
    from typer.testing import CliRunner

    from safetymon.cli import app

    service = await running(settings.model_copy(update={"escalation_minutes": 60.0}))
    signal = u0()
    await publish(js, namespace, signal)
    await eventually(lambda: _settled_with(service, 2))
    where = ["--nats-url", nats_url, "--namespace", namespace]
    runner = CliRunner()

    def cli(*args: str):
        return runner.invoke(app, [*args, *where], catch_exceptions=False)

    first = await asyncio.to_thread(
        cli, "ack", str(signal.event_id), "--by", "Dr Safety", "--reason", "called the site"
    )
    second = await asyncio.to_thread(cli, "ack", str(signal.event_id), "--by", "X", "--reason", "y")
    log = await asyncio.to_thread(cli, "notifications", "--signal", str(signal.event_id), "--json")
    await service.export_snapshot(tmp_path / "snap")
    offline = await asyncio.to_thread(
        cli, "notifications", "--signal", str(signal.event_id), "--json",
        "--snapshot", str(tmp_path / "snap"),
    )  # fmt: skip

    # The service runs in this process and logs to the same stdout: keep the JSON only.
    assert first.exit_code == 0, first.output
    assert json.loads(first.output[first.output.index("{\n") :])["by"] == "Dr Safety"
    assert second.exit_code == 1
    assert "already acknowledged by Dr Safety" in second.output
    entries = _json_lines(log.output)
    assert [e["event_type"] for e in entries] == [
        "notification_intended", "notification_intended",
        "notification_sent", "notification_sent", "alert_acknowledged",
    ]  # fmt: skip
    assert entries[-1]["reason"] == "called the site"
    assert all(e["smtp_reply"].startswith("250 ") for e in entries if "sent" in e["event_type"])
    assert _json_lines(offline.output) == entries


def _json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


async def _settled_with(service: NotifyService, sent: int) -> bool:
    rows = await service.notifications()
    return sum(r["status"] == "sent" for r in rows) == sent


async def test_u2_signals_are_held_then_sent_as_one_digest_per_recipient(
    settings, js, namespace, server, running
) -> None:
    service = await running(settings.model_copy(update={"escalation_minutes": 60.0}))
    u2 = [
        make_signal(site_id="SA", participant_id=f"P-07{i}", urgency=Urgency.U2,
                    recipients=(Role.SAFETY_OFFICER,))
        for i in range(3)
    ]  # fmt: skip
    urgent = u0(participant_id="P-0799")
    for signal in (*u2, urgent):
        await publish(js, namespace, signal)
    await eventually(lambda: _intended(service, 5))
    await eventually(lambda: len(server.inbox.all()) == 2)  # the U0 to the SO and the PI
    await asyncio.sleep(0.5)
    held_back = len(server.inbox.all())
    unsent_while_held = await service.unsent_count()

    moved = await service.flush_digests()
    await eventually(lambda: len(server.inbox.to(SO)) == 2)
    await eventually(lambda: _settled(service))
    await asyncio.sleep(0.3)

    assert (held_back, unsent_while_held, moved) == (2, 0, 3)
    digest = message_from_bytes(server.inbox.to(SO)[1].raw, policy=policy.default)
    assert digest["Subject"].startswith("[U2 DIGEST] 3 signals: P-070, P-071, P-072")
    assert len(server.inbox.all()) == 3
    for signal in u2:
        kinds = await events(service, signal.event_id)
        assert kinds == ["notification_intended", "notification_sent"]


async def test_retraction_replies_to_the_first_email_and_stops_the_escalation(
    settings, js, namespace, server, running
) -> None:
    from tests.unit.notify.factories import make_update

    service = await running(settings.model_copy(update={"escalation_minutes": 3 / 60}))
    signal = u0()
    await publish(js, namespace, signal)
    await eventually(lambda: len(server.inbox.to(SO)) == 1)

    retraction = make_update(signal, status="retracted")
    await publish(js, namespace, retraction)
    await eventually(lambda: len(server.inbox.to(SO)) == 2)
    await asyncio.sleep(4.0)  # past both escalation levels

    first, second = (message_from_bytes(m.raw, policy=policy.default) for m in server.inbox.to(SO))
    assert "RETRACTED" in second["Subject"]
    assert second["In-Reply-To"] == second["References"] == first["Message-ID"]
    assert server.inbox.to(BACKUP) == [] and server.inbox.to(CHAIR) == []
    assert "alert_escalated" not in await events(service, signal.event_id)
    assert TOKEN.search(second.get_body(("plain",)).get_content()) is None  # nothing to ack


async def test_escalation_and_link_expiry_follow_the_injected_clock(
    settings, js, namespace, server
) -> None:
    """The clock port drives both timers: nothing moves until the clock does."""
    from services.notify.adapters.memory import ManualClock

    clock = ManualClock(datetime.now(UTC))
    service = build_app(
        settings.model_copy(update={"escalation_minutes": 60.0, "ack_ttl_hours": 72.0}),
        Deps(clock=clock),
    )
    await service.start()
    try:
        first, second = u0(participant_id="P-0501"), u0(participant_id="P-0502")
        for signal in (first, second):
            await publish(js, namespace, signal)
        await eventually(lambda: len(server.inbox.to(SO)) == 2)
        links = {_header(m, "X-Safetymon-Signal-Id"): ack_url(m) for m in server.inbox.to(SO)}

        clock.advance(59 * 60)
        await asyncio.sleep(0.5)
        before = len(server.inbox.to(BACKUP))
        clock.advance(60)
        await eventually(lambda: len(server.inbox.to(BACKUP)) == 2)
        ok = await post_ack(service, links[str(first.event_id)].split("token=")[1])
        clock.advance(72 * 3600)
        late = await post_ack(service, links[str(second.event_id)].split("token=")[1])
        await eventually(lambda: len(server.inbox.to(CHAIR)) == 1)
        await asyncio.sleep(0.5)

        assert before == 0
        assert (ok.status_code, late.status_code) == (200, 410)
        [chair] = server.inbox.to(CHAIR)
        assert _header(chair, "X-Safetymon-Signal-Id") == str(second.event_id)
    finally:
        await service.stop()
