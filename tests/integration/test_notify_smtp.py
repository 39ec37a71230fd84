"""SmtpMailer against a real aiosmtpd with STARTTLS and AUTH, and against a server that is down."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from services.notify.adapters.jinja_renderer import JinjaRenderer
from services.notify.adapters.smtp_mailer import SmtpConfig, SmtpMailer
from services.notify.core.errors import MailServerUnavailableError
from services.notify.core.plan import plan_notifications
from services.notify.ports import OutgoingMail
from tests.conftest import SmtpRecorder, free_port
from tests.unit.notify.factories import make_routing, make_signal

pytestmark = pytest.mark.integration

USER, PASSWORD = "notify", "s3cret-Pa55"


def _clock() -> datetime:
    return datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def _authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # handled=False, or the client hangs


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(certificate) -> Iterator[tuple[int, SmtpRecorder]]:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    recorder = SmtpRecorder()
    port = free_port()
    controller = Controller(
        recorder, hostname="127.0.0.1", port=port, tls_context=context,
        require_starttls=True, authenticator=_authenticate, auth_require_tls=True,
    )  # fmt: skip
    controller.start()
    yield port, recorder
    controller.stop()


def _mail() -> OutgoingMail:
    plan = plan_notifications(make_signal(), make_routing())[0]
    text, html = JinjaRenderer().render(plan)
    return OutgoingMail(plan, text, html)


def _config(port: int, cert: Path, **overrides) -> SmtpConfig:
    fields: dict[str, Any] = {
        "host": "127.0.0.1", "port": port, "mail_from": "safetymon@trial.example",
        "timeout": 5.0, "starttls": True, "username": USER, "password": PASSWORD,
        "cert_bundle": str(cert),
    }  # fmt: skip
    return SmtpConfig(**(fields | overrides))


async def test_starttls_and_login_then_one_connection_for_a_burst(tls_server, certificate) -> None:
    port, recorder = tls_server
    mailer = SmtpMailer(_config(port, certificate[0]), clock=_clock)

    async with mailer.session() as session:
        replies = [await session.send(_mail()) for _ in range(3)]

    assert all(reply.startswith("250 ") for reply in replies)
    [first, *_] = recorder.snapshot()
    message = message_from_bytes(first.raw, policy=policy.default)
    assert message["Date"] == "Fri, 01 Mar 2024 10:00:00 +0000"
    assert len(recorder.snapshot()) == 3


async def test_wrong_password_is_server_unavailable_and_never_echoes_it(
    tls_server, certificate
) -> None:
    port, _ = tls_server
    config = _config(port, certificate[0], password="wrong-" + PASSWORD)

    async with SmtpMailer(config, clock=_clock).session() as session:
        with pytest.raises(MailServerUnavailableError, match="535") as caught:
            await session.send(_mail())

    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(config)


async def test_untrusted_certificate_is_refused(tls_server, certificate) -> None:
    port, _ = tls_server

    async with SmtpMailer(
        _config(port, certificate[0], cert_bundle=None), clock=_clock
    ).session() as s:
        with pytest.raises(MailServerUnavailableError):
            await s.send(_mail())


async def test_server_down_is_unavailable() -> None:
    config = SmtpConfig(host="127.0.0.1", port=free_port(), mail_from="a@trial.example", timeout=2)

    async with SmtpMailer(config, clock=_clock).session() as session:
        with pytest.raises(MailServerUnavailableError, match="SMTPConnectError"):
            await session.send(_mail())
