"""Composition root of the notify service: the only module that names concrete adapters.

Nothing connects at import time. `build_service(settings)` constructs; `await start()`
validates the routing file, opens DuckDB, serves acknowledgement links over HTTP, connects
to NATS, ensures the signals and reports streams and starts the sender, the escalator and
the JetStream consumers (signals, and issued DSMB reports), and answers ack / delivery-log /
snapshot requests over NATS; `await stop()` shuts down gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import nats.js.errors
import structlog
from faststream.nats import NatsBroker
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from kit.auth import TokenStore
from kit.jetstream import BatchConsumer, ensure_stream
from kit.metrics import Observability, new_registry
from schemas import DUPLICATE_WINDOW_SECONDS, NOTIFY_DURABLE, Subjects
from schemas.subjects import NOTIFY_REPORTS_DURABLE
from services.notify.adapters.audit_export import (
    AUDIT_TRAIL_FILE,
    build_snapshot_responder,
    snapshot_subject,
)
from services.notify.adapters.clock import SystemClock
from services.notify.adapters.duckdb_store import DuckDBNotificationStore
from services.notify.adapters.http_api import build_http_app
from services.notify.adapters.http_server import HttpServer, load_or_create_secret
from services.notify.adapters.labelled_renderer import LabelledRenderer
from services.notify.adapters.metrics import MeteredMailer, NotifyMetrics, NotifyProbe
from services.notify.adapters.nats_requests import ack_subject, build_responders, log_subject
from services.notify.adapters.nats_routes import build_report_handler, build_signal_handler
from services.notify.adapters.sent_journal import FileSentJournal
from services.notify.adapters.smtp_mailer import SmtpConfig, SmtpMailer
from services.notify.adapters.trail_relay import TrailRelay
from services.notify.app import Sender, SendPolicy, SignalIntake
from services.notify.app.alerts import Acknowledger, Escalator
from services.notify.app.reports import ReportIntake
from services.notify.config import Settings
from services.notify.core.ack import AckClaims, sign_ack
from services.notify.core.audit import ChainCheck, verify_chain
from services.notify.core.digest import DigestSchedule
from services.notify.core.errors import RoutingFileError
from services.notify.core.failover import failover_plans
from services.notify.core.plan import NotificationPlan
from services.notify.core.routing import Routing, parse_routing
from services.notify.ports import Clock, DeadLetter, Logger, OpenAlert

_READY_TIMEOUT_S = 10.0
_CRASH_BACKOFF_CAP_S = 30.0


def load_routing(path: Path) -> Routing:
    """Read and validate the routing file; a bad file is a startup error naming the key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"routing file {path}: cannot be read ({exc.strerror or exc})"
        raise RoutingFileError(msg) from exc
    return parse_routing(text, source=f"routing file {path}")


class NotifyService:
    """The notify service in one process: JetStream consumer, outbox sender, read API."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self._log = structlog.get_logger("services.notify")
        self._broker: NatsBroker | None = None
        self._store: DuckDBNotificationStore | None = None
        self._journal: FileSentJournal | None = None
        self._sender: Sender | None = None
        self._consumer: BatchConsumer | None = None
        self._report_consumer: BatchConsumer | None = None
        self._snapshot_sub: Subscription | None = None
        self._request_subs: list[Subscription] = []
        self._http: HttpServer | None = None
        self._escalator: Escalator | None = None
        self._relay: TrailRelay | None = None
        self.acknowledger: Acknowledger | None = None
        self.http_port: int | None = None
        # The clock port: escalation timers, retry times and acknowledgement expiry read it.
        self.clock: Clock = clock or SystemClock()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.metrics = NotifyMetrics(registry := new_registry())
        self._registry = registry
        self._probe = NotifyProbe(
            self.metrics, durable=NOTIFY_DURABLE, open_alerts=self.open_alerts,
            clock=self.clock.now,
        )  # fmt: skip

    async def start(self) -> None:
        """Start everything and return once the consumer is bound to the signals stream."""
        settings = self.settings
        routing = load_routing(settings.routing)  # first: a bad file fails before any I/O
        display_tz = ZoneInfo(settings.display_timezone)
        self._stopping = False
        try:
            store = self._store = DuckDBNotificationStore(settings.duckdb_path)
            await asyncio.to_thread(store.open)
            journal = self._journal = self._build_journal()
            await asyncio.to_thread(journal.open)
            key = await asyncio.to_thread(self._ack_key)
            base_url = await self._start_http(store, key)
            js = await self._connect()
            signals_stream = Subjects(settings.namespace).signals_stream
            assert self._broker is not None  # noqa: S101 - connected just before
            self._probe.attach(
                self._broker.connection, lambda: js.consumer_info(signals_stream, NOTIFY_DURABLE)
            )
            sender = self._sender = self._build_sender(
                store, journal, routing, key=key, base_url=base_url
            )
            self._escalator = Escalator(
                store=store, routing=routing, clock=self.clock,
                log=self.metrics.escalation_log(self._log),
                delay=timedelta(minutes=settings.escalation_minutes), on_recorded=sender.wake,
                tick_seconds=settings.escalation_tick_seconds,
            )  # fmt: skip
            intake = SignalIntake(
                store=store, routing=routing, clock=self.clock, log=self._log,
                consumer=NOTIFY_DURABLE, on_recorded=sender.wake, display_tz=display_tz,
                digests=DigestSchedule(
                    tz=display_tz, hour=settings.digest_hour,
                    dsmb_weekday=settings.dsmb_digest_weekday,
                ),
            )  # fmt: skip
            subjects = Subjects(settings.namespace)
            consumer = self._consumer = BatchConsumer(
                js,
                stream=subjects.signals_stream,
                durable=NOTIFY_DURABLE,
                handler=build_signal_handler(self.metrics.observe_intake(intake), log=self._log),
                max_batch=settings.max_batch,
            )
            reports = self._report_consumer = self._build_report_consumer(js, store, routing)
            self._spawn("sender", sender.run)
            self._spawn("signal-consumer", consumer.run)
            self._spawn("report-consumer", reports.run)
            self._spawn("escalator", self._escalator.run)
            # Notify's facts reach its stream from the committed trail, never from inside a
            # transaction: what a crash interrupts is published at the next start. The relay
            # makes its stream itself, in its own supervised task: a stream it cannot reach
            # delays that publication, never an alert email.
            self._relay = TrailRelay(js, store, namespace=settings.namespace, log=self._log)
            self._spawn("trail-relay", self._relay.run)
            await self._wait_ready(js, subjects.signals_stream, NOTIFY_DURABLE)
            await self._wait_ready(js, subjects.reports_stream, NOTIFY_REPORTS_DURABLE)
            await self._serve_snapshots()
        except BaseException:
            await self.stop()
            raise
        self._log.info("notify_started", namespace=settings.namespace, durable=NOTIFY_DURABLE)

    def _build_report_consumer(
        self, js: JetStreamContext, store: DuckDBNotificationStore, routing: Routing
    ) -> BatchConsumer:
        """The durable on the reports stream: each issued DSMB report becomes its emails."""
        assert self._sender is not None  # noqa: S101 - built just before by start()
        intake = ReportIntake(
            store=store, routing=routing, clock=self.clock, log=self._log,
            consumer=NOTIFY_REPORTS_DURABLE, reports_base_url=self.settings.reports_base_url,
            on_recorded=self._sender.wake,
        )  # fmt: skip
        return BatchConsumer(
            js,
            stream=Subjects(self.settings.namespace).reports_stream,
            durable=NOTIFY_REPORTS_DURABLE,
            handler=build_report_handler(intake, log=self._log),
            max_batch=self.settings.max_batch,
        )

    def _ack_key(self) -> bytes:
        secret = self.settings.ack_secret
        if secret is not None:
            return secret.get_secret_value().encode("utf-8")
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return load_or_create_secret(self.settings.data_dir / "ack.secret")

    async def _start_http(self, store: DuckDBNotificationStore, key: bytes) -> str:
        """Serve acknowledgement links and the delivery log; return the links' base URL."""
        settings = self.settings
        self.acknowledger = Acknowledger(store=store, clock=self.clock, log=self._log, key=key)
        bootstrap = settings.bootstrap_token
        tokens = TokenStore(
            settings.tokens_path,
            bootstrap_secret=bootstrap.get_secret_value() if bootstrap else None,
        )
        if bootstrap is not None:
            # Visible in every deployment's log: a bootstrap admin is for demos and tests.
            self._log.warning("bootstrap_token_enabled", tokens_file=str(settings.tokens_path))
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
        observability = Observability(
            self._registry, self._probe.refresh, self._probe.ready, token or None
        )
        api = build_http_app(self.acknowledger, store, tokens=tokens, observability=observability)
        self._http = HttpServer(api, host=settings.notify_http_host, port=settings.notify_http_port)
        self.http_port = await self._http.start()
        base = settings.notify_public_url or f"http://{settings.notify_http_host}:{self.http_port}"
        return base.rstrip("/")

    async def _connect(self) -> JetStreamContext:
        """Connect to NATS through faststream and make sure the signals stream exists."""
        self._broker = NatsBroker(
            # every server of a cluster (comma-separated URLs); never stop reconnecting
            self.settings.nats_url.split(","),
            max_reconnect_attempts=-1,
            **self.settings.nats_broker_options(),
        )
        await self._broker.connect()
        js = self._broker.connection.jetstream()
        subjects = Subjects(self.settings.namespace)
        await ensure_stream(
            js,
            name=subjects.signals_stream,
            subjects=subjects.signals_filter,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
        )
        # The report service owns this stream; whoever starts first creates it, with the
        # same settings (ensure_stream never changes an existing stream).
        await ensure_stream(
            js,
            name=subjects.reports_stream,
            subjects=subjects.reports_filter,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
        )
        return js

    async def _serve_snapshots(self) -> None:
        """Answer snapshot, acknowledgement and delivery-log requests over NATS request/reply."""
        assert self._broker is not None  # noqa: S101 - connected by _connect() just before
        respond = build_snapshot_responder(
            self.export_snapshot, default_root=self.settings.data_dir / "exports", log=self._log
        )
        subject = snapshot_subject(self.settings.namespace)
        self._snapshot_sub = await self._broker.connection.subscribe(subject, cb=respond)
        assert self.acknowledger is not None  # noqa: S101 - set by _start_http() before
        namespace = self.settings.namespace
        responders = build_responders(self.acknowledger, self._require_store(), log=self._log)
        for subject, purpose in ((ack_subject(namespace), "ack"), (log_subject(namespace), "log")):
            sub = await self._broker.connection.subscribe(subject, cb=responders[purpose])
            self._request_subs.append(sub)
        # For a caller in another process (the supervised demo, safetymon/supervised.py).
        for subject, answer in (
            (state_subject(namespace), self._state),
            (flush_digests_subject(namespace), self._flushed),
        ):
            sub = await self._broker.connection.subscribe(subject, cb=_replying(answer, self._log))
            self._request_subs.append(sub)

    async def _state(self) -> dict[str, Any]:
        """Read only: unsent notifications and the open U0 alerts with their first email."""
        alerts = [
            {"signal_id": str(a.state.signal_id), "message_id": a.first.message_id}
            for a in await self.open_alerts()
        ]
        return {"unsent": await self.unsent_count(), "open_alerts": alerts}

    async def _flushed(self) -> dict[str, Any]:
        return {"moved": await self.flush_digests()}

    async def export_snapshot(self, directory: Path) -> dict[str, Any]:
        """Write the audit trail and outbox as Parquet into `directory` from this process.

        Returns the directory and, per file, its path, rows and sha256, with the audit
        trail's chain summary (first and last seq, head hash) read in the same transaction.
        """
        files = await self._require_store().export_snapshot(directory)
        trail = files[AUDIT_TRAIL_FILE]
        self._log.info("audit_snapshot_written", rows=trail["rows"], head=trail["chain"]["head"])
        return {"service": "notify", "directory": str(directory), "files": files}

    def _build_journal(self) -> FileSentJournal:
        after_write = None
        if self.settings.test_kill_after_sent_journal:
            self._log.warning("test_kill_after_sent_journal_enabled")

            def after_write() -> None:
                # Test only: die as kill -9 would, between the journal and the outbox commit.
                os.kill(os.getpid(), signal.SIGKILL)

        return FileSentJournal(self.settings.sent_journal_path, after_write=after_write)

    def _build_sender(
        self, store: DuckDBNotificationStore, journal: FileSentJournal, routing: Routing, *,
        key: bytes, base_url: str,
    ) -> Sender:  # fmt: skip
        settings = self.settings
        ttl = timedelta(hours=settings.ack_ttl_hours)

        def ack_link(plan: NotificationPlan, now: datetime) -> str:
            claims = AckClaims(plan.notification_id, plan.signal_id, now + ttl)
            return f"{base_url}/v1/ack?token={sign_ack(claims, key=key)}"

        def failover(plan: NotificationPlan, error: str) -> tuple[NotificationPlan, ...]:
            return failover_plans(plan, routing, error=error)

        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        config = SmtpConfig(
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
        clock = self.clock
        return Sender(
            store=store,
            mailer=MeteredMailer(
                SmtpMailer(config, clock=clock.now), self.metrics, clock=clock.now
            ),
            renderer=LabelledRenderer(console_url=settings.console_url),
            clock=clock,
            ack_link=ack_link,
            failover=failover,
            journal=journal,
            log=self._log,
            policy=SendPolicy(
                base_seconds=settings.retry_base_seconds,
                cap_seconds=settings.retry_cap_seconds,
                burst=settings.send_burst,
            ),
        )

    def _spawn(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        self._tasks.append(asyncio.create_task(self._supervise(name, run), name=f"notify-{name}"))

    async def _supervise(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        # A crashed loop is logged at error level and restarted with backoff: a lost
        # sender would leave an SAE unsent, so nothing here ends the task but stop().
        failures = 0
        while not self._stopping:
            try:
                await run()
            except Exception:
                failures += 1
                self._log.exception("notify_task_crashed", task=name, failures=failures)
                await asyncio.sleep(min(_CRASH_BACKOFF_CAP_S, 0.5 * 2**failures))
            else:
                return

    async def _wait_ready(self, js: JetStreamContext, stream: str, durable: str) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while True:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.consumer_info(stream, durable)
                return
            if time.monotonic() > deadline:
                msg = f"durable {durable} on {stream} not ready after {_READY_TIMEOUT_S} s"
                raise TimeoutError(msg)
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        """Stop taking signals, let the message in hand finish, close NATS and DuckDB."""
        self._stopping = True
        if self._consumer is not None:
            self._consumer.stop()
        if self._report_consumer is not None:
            self._report_consumer.stop()
        if self._sender is not None:
            self._sender.stop()
        if self._escalator is not None:
            self._escalator.stop()
        if self._relay is not None:
            self._relay.stop()
        if self._http is not None:
            http, self._http = self._http, None
            await http.stop()
        await self._stop_snapshots()
        await self._drain_tasks()
        if self._broker is not None:
            broker, self._broker = self._broker, None
            try:
                await broker.stop()
            except Exception as exc:  # shutdown goes on; the error is logged
                self._log.warning("nats_close_failed", error=type(exc).__name__)
        if self._store is not None:
            store, self._store = self._store, None
            await asyncio.to_thread(store.close)
        if self._journal is not None:
            journal, self._journal = self._journal, None
            journal.close()
        self._consumer = self._report_consumer = self._sender = None
        self._escalator = self.acknowledger = None
        self._relay = None
        self._log.info("notify_stopped")

    async def _stop_snapshots(self) -> None:
        subs, self._request_subs = self._request_subs, []
        if self._snapshot_sub is not None:
            subs.append(self._snapshot_sub)
            self._snapshot_sub = None
        for sub in subs:
            try:
                await sub.unsubscribe()
            except Exception as exc:  # the connection closes next anyway; the error is logged
                self._log.warning("snapshot_unsubscribe_failed", error=type(exc).__name__)

    async def _drain_tasks(self) -> None:
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        # Fetch long-polls for 1 s and a send may take up to the SMTP timeout.
        _, late = await asyncio.wait(tasks, timeout=self.settings.smtp_timeout + 2.0)
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def notifications(self, signal_id: UUID | str | None = None) -> list[dict[str, Any]]:
        """Return the outbox rows (all, or one signal's), read through the owning service."""
        wanted = UUID(str(signal_id)) if signal_id is not None else None
        return await self._require_store().notifications(wanted)

    async def delivery_log(
        self, *, signal_id: UUID | None = None, participant_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Every attempt, reply, acknowledgement and escalation of a signal or participant."""
        store = self._require_store()
        return await store.delivery_log(signal_id=signal_id, participant_id=participant_id)

    async def flush_digests(self) -> int:
        """Send every held digest now instead of at its scheduled time; return rows moved."""
        moved = await self._require_store().flush_digests(at=self.clock.now())
        if moved and self._sender is not None:
            self._sender.wake()
        return moved

    async def open_alerts(self) -> list[OpenAlert]:
        """Unacknowledged open U0 alerts, oldest first (the demo's duty officer reads these)."""
        return await self._require_store().open_alerts()

    async def unsent_count(self) -> int:
        """Count notifications still intended and unconfirmed (the runner's "settled" check)."""
        return await self._require_store().unsent_count()

    async def dead_letters(self) -> list[DeadLetter]:
        """Return deliveries that were not valid signals (kept for a human to look at)."""
        return await self._require_store().dead_letters()

    async def verify_audit(self) -> ChainCheck:
        """Verify the notify audit trail's hash chain."""
        return verify_chain(await self._require_store().audit_entries())

    def _require_store(self) -> DuckDBNotificationStore:
        if self._store is None:
            msg = "notify service is not started"
            raise RuntimeError(msg)
        return self._store


def state_subject(namespace: str) -> str:
    """Subject of the read-only state request (unsent count, open U0 alerts)."""
    return f"{namespace}.notify.state"


def flush_digests_subject(namespace: str) -> str:
    """Subject of the request that sends the held digests now (`flush_digests`)."""
    return f"{namespace}.notify.digests.flush"


def _replying(
    answer: Callable[[], Awaitable[dict[str, Any]]], log: Logger
) -> Callable[[Msg], Awaitable[None]]:
    async def respond(msg: Msg) -> None:
        try:
            reply = await answer()
        except Exception as exc:  # reported to the requester and logged, never swallowed
            log.error("notify_request_failed", error=type(exc).__name__, exc_info=True)
            reply = {"error": type(exc).__name__, "status": 500}
        if msg.reply:
            await msg.respond(json.dumps(reply).encode("utf-8"))

    return respond


def build_service(settings: Settings | None = None, *, clock: Clock | None = None) -> NotifyService:
    """Construct the notify service (connects nothing until `start()`)."""
    # Logging is configured by whoever composes the process (CLI, runner), not here.
    return NotifyService(settings or Settings(), clock=clock)
