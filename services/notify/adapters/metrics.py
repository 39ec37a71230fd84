"""Prometheus metrics and readiness of the notify service (adapters layer).

Observed at the edges, so the use-cases stay free of metrics: the intake callable (signals
received), the mailer (every SMTP conversation: 250, refusal, deferral, outage), the
escalator's log (escalations recorded) and, at scrape time, the store (oldest open U0).

Alert latency is measured from the signal's `recorded_at`, which rules copies from the fact
that caused it (the moment ingest accepted that fact), to the SMTP server's 250 for an
immediate email about it. Digests (sent at their hour) and escalations (sent because
nobody acknowledged) are not alert latency and are left out. The signal's time is kept in
memory from its intake: an email sent by a later process than the one that took its
signal in (a restart in between) is counted as sent but has no latency sample.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kit.metrics import LATENCY_BUCKETS, Checks, ConsumerGauges, ProgressWatch, nats_checks
from schemas import SignalRaised, SignalUpdated, Urgency
from services.notify.core.errors import (
    DeliveryDeferredError,
    DeliveryRefusedError,
    HeaderInjectionError,
    MailServerUnavailableError,
    PermanentError,
)
from services.notify.ports import (
    DeadLetter,
    IntakeResult,
    Logger,
    Mailer,
    MailSession,
    OutgoingMail,
)

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.js.api import ConsumerInfo

    from services.notify.ports import OpenAlert

AnySignal = SignalRaised | SignalUpdated
Intake = Callable[[Sequence[AnySignal], Sequence[DeadLetter]], Awaitable[IntakeResult]]
#: Signals whose recorded_at is remembered for the latency histogram (oldest dropped first).
_REMEMBERED: Final = 50_000
_URGENCIES: Final = tuple(u.value for u in Urgency)


class NotifyMetrics:
    """The notify service's metrics, registered in its own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.consumers = ConsumerGauges(registry)
        self.signals = Counter(
            "safetymon_notify_signals_received",
            "New signals taken in (redeliveries not counted), by urgency and kind.",
            ["urgency", "kind"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "safetymon_notify_dead_letters",
            "Deliveries on the signals stream that were not a valid signal.",
            registry=registry,
        )
        self.sent = _by_urgency(Counter(
            "safetymon_notify_emails_sent", "Emails the SMTP server accepted (250), by urgency.",
            ["urgency"], registry=registry,
        ))  # fmt: skip
        self.failed = _by_urgency(Counter(
            "safetymon_notify_emails_failed",
            "Emails refused for good (5xx, unsafe header): the next route is tried instead.",
            ["urgency"], registry=registry,
        ))  # fmt: skip
        self.retried = _by_urgency(Counter(
            "safetymon_notify_emails_retried",
            "Emails that failed for now (4xx, server unavailable) and are retried later.",
            ["urgency"], registry=registry,
        ))  # fmt: skip
        self.smtp_failures = Counter(
            "safetymon_notify_smtp_failures",
            "Failed SMTP conversations by kind: refused (5xx), deferred (4xx), unavailable "
            "(connection, TLS, login, timeout), header (unsafe header), other.",
            ["kind"],
            registry=registry,
        )
        self.escalations = Counter(
            "safetymon_notify_escalations",
            "Escalations of unacknowledged U0 alerts recorded, by level.",
            ["level"],
            registry=registry,
        )
        self.oldest_unacked_u0 = Gauge(
            "safetymon_notify_oldest_unacknowledged_u0_seconds",
            "Age of the oldest open, unacknowledged U0 alert (0 when there is none).",
            registry=registry,
        )
        self.alert_latency = Histogram(
            "safetymon_notify_alert_latency_seconds",
            "From the causing fact's recorded_at to the SMTP 250 of an immediate email about "
            "its signal (digests and escalations excluded), by urgency.",
            ["urgency"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        for urgency in (Urgency.U0.value, Urgency.U1.value):
            # Present (empty) before the first alert, so rate() over the buckets sees it rise.
            self.alert_latency.labels(urgency)
        self._recorded_at: OrderedDict[object, datetime] = OrderedDict()

    def observe_intake(self, intake: Intake) -> Intake:
        """Wrap the signal intake: count new signals and remember when their facts arrived."""

        async def observed(
            signals: Sequence[AnySignal], dead_letters: Sequence[DeadLetter]
        ) -> IntakeResult:
            result = await intake(signals, dead_letters)
            new = set(result.new_signals)
            for signal in signals:
                if signal.event_id in new:
                    new.discard(signal.event_id)
                    kind = signal.status if isinstance(signal, SignalUpdated) else "raised"
                    self.signals.labels(signal.payload.urgency.value, kind).inc()
                    self._remember(signal)
            if dead_letters:
                self.dead_letters.inc(len(dead_letters))
            return result

        return observed

    def _remember(self, signal: AnySignal) -> None:
        self._recorded_at[signal.event_id] = signal.recorded_at
        while len(self._recorded_at) > _REMEMBERED:
            self._recorded_at.popitem(last=False)

    def delivered(self, mail: OutgoingMail, at: datetime) -> None:
        """Count a 250 and, for an immediate alert email, observe its latency."""
        plan = mail.plan
        self.sent[plan.urgency.value].inc()
        recorded_at = self._recorded_at.get(plan.signal_id)
        if recorded_at is None or plan.digest_key is not None or "escalation" in plan.context:
            return
        latency = max(0.0, (at - recorded_at).total_seconds())
        self.alert_latency.labels(plan.urgency.value).observe(latency)

    def refused(self, mail: OutgoingMail, exc: Exception) -> None:
        """Count a failed SMTP conversation, as the sender will treat it."""
        urgency = mail.plan.urgency.value
        (self.failed if isinstance(exc, PermanentError) else self.retried)[urgency].inc()
        self.smtp_failures.labels(_failure_kind(exc)).inc()

    def escalation_log(self, log: Logger) -> Logger:
        """The escalator's logger, counting each `alert_escalated` it logs."""
        return _CountingLogger(log, self.escalations)

    def oldest_open_u0(self, alerts: Sequence[OpenAlert], now: datetime) -> None:
        """Set the oldest-unacknowledged-U0 gauge from the open alerts."""
        ages = [
            (now - alert.state.raised_at).total_seconds()
            for alert in alerts
            if alert.state.urgency is Urgency.U0
        ]
        self.oldest_unacked_u0.set(max(ages, default=0.0))


def _by_urgency(counter: Counter) -> dict[str, Counter]:
    # Every urgency's series exists from the start, so rate() and panels see zeros.
    return {urgency: counter.labels(urgency) for urgency in _URGENCIES}


def _failure_kind(exc: Exception) -> str:
    kinds: tuple[tuple[type[Exception], str], ...] = (
        (DeliveryRefusedError, "refused"),
        (DeliveryDeferredError, "deferred"),
        (MailServerUnavailableError, "unavailable"),
        (HeaderInjectionError, "header"),
    )
    return next((kind for cls, kind in kinds if isinstance(exc, cls)), "other")


class _CountingLogger:
    def __init__(self, inner: Logger, escalations: Counter) -> None:
        self._inner = inner
        self._escalations = escalations

    def info(self, event: str, **kw: object) -> object:
        return self._inner.info(event, **kw)

    def warning(self, event: str, **kw: object) -> object:
        if event == "alert_escalated":
            self._escalations.labels(str(kw.get("level", "?"))).inc()
        return self._inner.warning(event, **kw)

    def error(self, event: str, **kw: object) -> object:
        return self._inner.error(event, **kw)


class MeteredMailer:
    """A Mailer whose sessions report each conversation's outcome to NotifyMetrics."""

    def __init__(
        self, inner: Mailer, metrics: NotifyMetrics, *, clock: Callable[[], datetime]
    ) -> None:
        self._inner = inner
        self._metrics = metrics
        self._clock = clock

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[MailSession]:
        """A session of the wrapped mailer, observed."""
        async with self._inner.session() as session:
            yield _MeteredSession(session, self._metrics, self._clock)


class _MeteredSession:
    def __init__(
        self, inner: MailSession, metrics: NotifyMetrics, clock: Callable[[], datetime]
    ) -> None:
        self._inner = inner
        self._metrics = metrics
        self._clock = clock

    async def send(self, mail: OutgoingMail) -> str:
        try:
            reply = await self._inner.send(mail)
        except Exception as exc:
            self._metrics.refused(mail, exc)
            raise
        self._metrics.delivered(mail, self._clock())
        return reply


class NotifyProbe:
    """Scrape-time gauges and readiness of the notify service.

    Built before NATS is connected (the HTTP server that serves it starts first, for the
    acknowledgement links); `attach` hands it the connection once there is one.
    """

    def __init__(
        self,
        metrics: NotifyMetrics,
        *,
        durable: str,
        open_alerts: Callable[[], Awaitable[Sequence[OpenAlert]]],
        clock: Callable[[], datetime],
    ) -> None:
        self._metrics = metrics
        self._durable = durable
        self._open_alerts = open_alerts
        self._clock = clock
        self._nc: NatsClient | None = None
        self._info: Callable[[], Awaitable[ConsumerInfo]] | None = None
        self._watch = ProgressWatch()

    def attach(self, nc: NatsClient, consumer_info: Callable[[], Awaitable[ConsumerInfo]]) -> None:
        """Read the durable's consumer info through this connection from now on."""
        self._nc, self._info = nc, consumer_info

    async def refresh(self) -> None:
        """Read the oldest open U0 from the store and the durable's backlog from JetStream."""
        self._metrics.oldest_open_u0(await self._open_alerts(), self._clock())
        if self._info is not None:
            self._metrics.consumers.update(self._durable, await self._info())

    async def ready(self) -> Checks:
        """NATS connected, the durable answers, and its ack floor moves when work waits."""
        infos: list[ConsumerInfo] = []

        async def probe() -> None:
            if self._info is None:
                raise ConnectionError  # not attached yet: still starting
            infos.append(await self._info())

        checks = await nats_checks(self._nc, probe, what="consumer")
        if infos:
            info = infos[0]
            self._metrics.consumers.update(self._durable, info)
            floor = info.ack_floor.stream_seq if info.ack_floor is not None else 0
            waiting = (info.num_pending or 0) + (info.num_ack_pending or 0)
            checks["consumer"] = self._watch.check(waiting=waiting, position=floor or 0)
        return checks
