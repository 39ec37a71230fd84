"""Composition root of the notify service: the only module that names concrete adapters.

`build_app(settings, deps)` builds the service from settings and whatever `deps` injects;
nothing opens or connects until `await service.start()` (services/notify/service.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

from services.notify.adapters.clock import SystemClock
from services.notify.adapters.duckdb_store import DuckDBNotificationStore
from services.notify.adapters.labelled_renderer import LabelledRenderer
from services.notify.adapters.sent_journal import FileSentJournal
from services.notify.adapters.smtp_mailer import SmtpConfig, SmtpMailer
from services.notify.config import Settings
from services.notify.ports import Clock, Logger, Mailer, Renderer
from services.notify.service import Adapters, NotifyService


@dataclass(frozen=True, slots=True)
class Deps:
    """Dependencies to inject instead of the ones built from settings (tests, embedding)."""

    clock: Clock | None = None
    log: Logger | None = None
    #: Used for one start only (a closed DuckDB store does not open again).
    store: DuckDBNotificationStore | None = None
    journal: FileSentJournal | None = None
    mailer: Mailer | None = None
    renderer: Renderer | None = None
    #: Runs right after each write to the sent journal (after the SMTP 250, before the
    #: outbox commit): the crash test kills the process there.
    after_journal_write: Callable[[], None] | None = None


def build_app(settings: Settings | None = None, deps: Deps | None = None) -> NotifyService:
    """Build the notify service; it connects nothing until `start()`."""
    # Logging is configured by whoever composes the process (CLI, runner), not here.
    settings = settings or Settings()
    deps = deps or Deps()
    clock = deps.clock or SystemClock()
    given = deps.store

    def store() -> DuckDBNotificationStore:
        return given or DuckDBNotificationStore(settings.duckdb_path)

    journal = deps.journal or FileSentJournal(
        settings.sent_journal_path, after_write=deps.after_journal_write
    )
    adapters = Adapters(
        clock=clock,
        log=deps.log or structlog.get_logger("services.notify"),
        store=store,
        journal=journal,
        mailer=deps.mailer or SmtpMailer(_smtp_config(settings), clock=clock.now),
        renderer=deps.renderer or LabelledRenderer(console_url=settings.console_url),
    )
    return NotifyService(settings, adapters)


def _smtp_config(settings: Settings) -> SmtpConfig:
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        mail_from=settings.mail_from,
        timeout=settings.smtp_timeout,
        starttls=settings.smtp_starttls,
        username=settings.smtp_username,
        password=password,
        validate_certs=settings.smtp_validate_certs,
        cert_bundle=str(settings.smtp_cert_bundle) if settings.smtp_cert_bundle else None,
    )
