"""SMTP mailer (adapters layer): aiosmtplib sessions, MIME building, error translation.

One session reuses one connection for a burst and reconnects lazily, so connection
problems surface per message. aiosmtplib errors become the notify error classes:
4xx for a message -> DeliveryDeferredError, 5xx -> DeliveryRefusedError, and anything
that makes the server unusable for every message (refused connection, timeout, TLS,
login, 421, a refused sender) -> MailServerUnavailableError. Credentials never appear
in a log line, an error text or a repr.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from schemas import Urgency
from services.notify.core.errors import (
    DeliveryDeferredError,
    DeliveryRefusedError,
    HeaderInjectionError,
    MailServerUnavailableError,
)
from services.notify.core.pages import is_same_event
from services.notify.ports import OutgoingMail

_SERVICE_CLOSING = 421  # RFC 5321: the server is shutting the channel down


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Plain SMTP settings handed over by main.py (the password never shows in repr)."""

    host: str
    port: int
    mail_from: str
    timeout: float = 10.0
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    validate_certs: bool = True
    cert_bundle: str | None = None


def build_message(mail: OutgoingMail, *, mail_from: str, date: datetime) -> EmailMessage:
    """Build the multipart/alternative message with the deterministic Message-ID."""
    plan = mail.plan
    headers = {
        "From": mail_from,
        "To": plan.address,
        "Subject": plan.subject,
        "Date": format_datetime(date),
        "Message-ID": plan.message_id,
        "X-Safetymon-Signal-Id": str(plan.signal_id),
        "X-Safetymon-Notification-Id": str(plan.notification_id),
        "X-Safetymon-Urgency": plan.urgency.value,
        "Auto-Submitted": "auto-generated",  # RFC 3834: no vacation auto-replies
    }
    if plan.correlation_id is not None:
        # The event id of the fact behind the alert (a UUID, no PHI): the id its log lines
        # carry in every service (README "Tracing one alert").
        headers["X-Safetymon-Correlation-Id"] = str(plan.correlation_id)
    # A same-event reply rides on the page's thread: it must not look like a second page.
    if plan.urgency is Urgency.U0 and not is_same_event(plan):
        headers["Importance"] = "high"
    if plan.references:
        headers["In-Reply-To"] = headers["References"] = plan.references
    if mail.possible_duplicate:
        # Same Message-ID as the copy the server may already hold: clients fold the two.
        headers["X-Safetymon-Possible-Duplicate"] = "yes"
    message = EmailMessage()
    for name, value in headers.items():
        if "\r" in value or "\n" in value:
            msg = f"header {name} contains CR or LF; refusing to send"
            raise HeaderInjectionError(msg)
        message[name] = value
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


class SmtpMailer:
    """Mailer port over aiosmtplib; the Date header comes from the injected clock."""

    def __init__(self, config: SmtpConfig, *, clock: Callable[[], datetime]) -> None:
        self._config = config
        self._clock = clock

    @asynccontextmanager
    async def session(self) -> AsyncIterator[SmtpSession]:
        """One connection for a burst, closed politely at the end."""
        session = SmtpSession(self._config, clock=self._clock)
        try:
            yield session
        finally:
            await session.close()


class SmtpSession:
    """A lazily connected SMTP client that reconnects after a drop."""

    def __init__(self, config: SmtpConfig, *, clock: Callable[[], datetime]) -> None:
        self._config = config
        self._clock = clock
        self._smtp: aiosmtplib.SMTP | None = None

    async def send(self, mail: OutgoingMail) -> str:
        """Send one message; return the full reply, e.g. '250 2.0.0 Ok: queued as X'."""
        message = build_message(mail, mail_from=self._config.mail_from, date=self._clock())
        smtp = await self._connected()
        try:
            _, reply = await smtp.send_message(message, timeout=self._config.timeout)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refused.code for refused in exc.recipients]
            raise _by_code(min(codes, default=550), str(exc)) from exc
        except (aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPConnectResponseError) as exc:
            await self.close()
            raise MailServerUnavailableError(f"{exc.code} {exc.message}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == _SERVICE_CLOSING:
                await self.close()
                raise MailServerUnavailableError(f"{exc.code} {exc.message}") from exc
            raise _by_code(exc.code, exc.message) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self.close()
            raise MailServerUnavailableError(_describe(exc)) from exc
        # data() raises unless the server answered 250, so the code is known here.
        return f"250 {reply}"

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        config = self._config
        smtp = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            timeout=config.timeout,
            start_tls=config.starttls,
            username=config.username,
            password=config.password,
            validate_certs=config.validate_certs,
            cert_bundle=config.cert_bundle,
        )
        try:
            await smtp.connect(timeout=config.timeout)
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailServerUnavailableError(_describe(exc)) from exc
        self._smtp = smtp
        return smtp

    async def close(self) -> None:
        """Say QUIT when the connection is still up; drop it either way."""
        smtp, self._smtp = self._smtp, None
        if smtp is None or not smtp.is_connected:
            return
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await smtp.quit(timeout=self._config.timeout)
        smtp.close()


def _by_code(code: int, message: str) -> DeliveryDeferredError | DeliveryRefusedError:
    text = f"{code} {message}"
    return DeliveryDeferredError(text) if 400 <= code < 500 else DeliveryRefusedError(text)


def _describe(exc: BaseException) -> str:
    # aiosmtplib messages name host and port only; login errors carry the server's reply,
    # never the password we sent.
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{type(exc).__name__}: {exc.code} {exc.message}"
    return f"{type(exc).__name__}: {exc}"
