"""Notify's pipeline: the consumers that record intended emails, and the loops that send them.

Built by `NotifyService.start()` once the store is open and NATS connected. The signal and
report consumers turn each signal or issued DSMB report into its recipients' notifications
(one transaction per batch) and wake the sender; the escalator records the next route's
emails for an alert nobody acknowledged; the sender mails them with a signed acknowledgement
link and, when a route fails for good, fails over to the routing's next one. Also here: the
streams the consumers read, and the wait until their durables are bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import nats.js.errors
from nats.js import JetStreamContext

from kit.jetstream import BatchConsumer, ensure_stream
from schemas import DUPLICATE_WINDOW_SECONDS, NOTIFY_DURABLE, Subjects
from schemas.subjects import NOTIFY_REPORTS_DURABLE
from services.notify.adapters.http_server import load_or_create_secret
from services.notify.adapters.metrics import MeteredMailer, NotifyMetrics
from services.notify.adapters.nats_routes import build_report_handler, build_signal_handler
from services.notify.app import Sender, SendPolicy, SignalIntake
from services.notify.app.alerts import Escalator
from services.notify.app.reports import ReportIntake
from services.notify.config import Settings
from services.notify.core.ack import AckClaims, sign_ack
from services.notify.core.digest import DigestSchedule
from services.notify.core.failover import failover_plans
from services.notify.core.plan import NotificationPlan
from services.notify.core.routing import Routing
from services.notify.ports import (
    AlertStore,
    Clock,
    Logger,
    Mailer,
    NotificationStore,
    Renderer,
    SentJournal,
)

AckLink = Callable[[NotificationPlan, datetime], str]
_READY_TIMEOUT_S = 10.0


def signal_consumer(  # noqa: PLR0913 - the consumer's collaborators, all keyword-only
    js: JetStreamContext,
    *,
    settings: Settings,
    routing: Routing,
    store: NotificationStore,
    clock: Clock,
    log: Logger,
    metrics: NotifyMetrics,
    wake: Callable[[], None],
) -> BatchConsumer:
    """The durable on the signals stream: each signal becomes its intended emails."""
    display_tz = ZoneInfo(settings.display_timezone)
    intake = SignalIntake(
        store=store, routing=routing, clock=clock, log=log,
        consumer=NOTIFY_DURABLE, on_recorded=wake, display_tz=display_tz,
        digests=DigestSchedule(
            tz=display_tz, hour=settings.digest_hour, dsmb_weekday=settings.dsmb_digest_weekday,
        ),
    )  # fmt: skip
    return BatchConsumer(
        js,
        stream=Subjects(settings.namespace).signals_stream,
        durable=NOTIFY_DURABLE,
        handler=build_signal_handler(metrics.observe_intake(intake), log=log),
        max_batch=settings.max_batch,
    )


def report_consumer(  # noqa: PLR0913 - the consumer's collaborators, all keyword-only
    js: JetStreamContext,
    *,
    settings: Settings,
    routing: Routing,
    store: NotificationStore,
    clock: Clock,
    log: Logger,
    wake: Callable[[], None],
) -> BatchConsumer:
    """The durable on the reports stream: each issued DSMB report becomes its emails."""
    intake = ReportIntake(
        store=store, routing=routing, clock=clock, log=log,
        consumer=NOTIFY_REPORTS_DURABLE, reports_base_url=settings.reports_base_url,
        on_recorded=wake,
    )  # fmt: skip
    return BatchConsumer(
        js,
        stream=Subjects(settings.namespace).reports_stream,
        durable=NOTIFY_REPORTS_DURABLE,
        handler=build_report_handler(intake, log=log),
        max_batch=settings.max_batch,
    )


def escalator(
    *,
    settings: Settings,
    routing: Routing,
    store: AlertStore,
    clock: Clock,
    log: Logger,
    wake: Callable[[], None],
) -> Escalator:
    """Escalate an unacknowledged U0 alert along the routing after the configured delay."""
    return Escalator(
        store=store, routing=routing, clock=clock, log=log,
        delay=timedelta(minutes=settings.escalation_minutes), on_recorded=wake,
        tick_seconds=settings.escalation_tick_seconds,
    )  # fmt: skip


def ack_links(*, key: bytes, base_url: str, ttl: timedelta) -> AckLink:
    """Sign each email's acknowledgement link: valid for `ttl` from when it is sent."""

    def ack_link(plan: NotificationPlan, now: datetime) -> str:
        claims = AckClaims(plan.notification_id, plan.signal_id, now + ttl)
        return f"{base_url}/v1/ack?token={sign_ack(claims, key=key)}"

    return ack_link


def build_sender(  # noqa: PLR0913 - the sender's collaborators, all keyword-only
    *,
    settings: Settings,
    routing: Routing,
    store: NotificationStore,
    journal: SentJournal,
    mailer: Mailer,
    renderer: Renderer,
    clock: Clock,
    log: Logger,
    metrics: NotifyMetrics,
    key: bytes,
    base_url: str,
) -> Sender:
    """The outbox sender: metered mail, ack links signed with `key`, failover by the routing."""

    def failover(plan: NotificationPlan, error: str) -> tuple[NotificationPlan, ...]:
        return failover_plans(plan, routing, error=error)

    return Sender(
        store=store,
        mailer=MeteredMailer(mailer, metrics, clock=clock.now),
        renderer=renderer,
        clock=clock,
        ack_link=ack_links(key=key, base_url=base_url, ttl=timedelta(hours=settings.ack_ttl_hours)),
        failover=failover,
        journal=journal,
        log=log,
        policy=SendPolicy(
            base_seconds=settings.retry_base_seconds,
            cap_seconds=settings.retry_cap_seconds,
            burst=settings.send_burst,
        ),
    )


def ack_key(settings: Settings) -> bytes:
    """The key the acknowledgement links are signed with: configured, or kept in the data dir."""
    secret = settings.ack_secret
    if secret is not None:
        return secret.get_secret_value().encode("utf-8")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return load_or_create_secret(settings.data_dir / "ack.secret")


async def ensure_streams(js: JetStreamContext, namespace: str) -> None:
    """Make sure the signals and reports streams the consumers read exist."""
    subjects = Subjects(namespace)
    # The report service owns the reports stream; whoever starts first creates it, with
    # the same settings (ensure_stream never changes an existing stream).
    for name, filter_ in (
        (subjects.signals_stream, subjects.signals_filter),
        (subjects.reports_stream, subjects.reports_filter),
    ):
        await ensure_stream(
            js, name=name, subjects=filter_, duplicate_window=DUPLICATE_WINDOW_SECONDS
        )


async def wait_bound(js: JetStreamContext, namespace: str) -> None:
    """Return once both durables exist on their streams (the consumers create them)."""
    subjects = Subjects(namespace)
    for stream, durable in (
        (subjects.signals_stream, NOTIFY_DURABLE),
        (subjects.reports_stream, NOTIFY_REPORTS_DURABLE),
    ):
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while True:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.consumer_info(stream, durable)
                break
            if time.monotonic() > deadline:
                msg = f"durable {durable} on {stream} not ready after {_READY_TIMEOUT_S} s"
                raise TimeoutError(msg)
            await asyncio.sleep(0.02)
