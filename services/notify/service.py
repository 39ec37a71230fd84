"""Lifecycle of the notify service: start, supervise and stop what main.build_app wired.

`await start()` validates the routing file, opens DuckDB and the sent journal, serves
acknowledgement links over HTTP, connects to NATS, ensures the signals and reports streams
and starts the sender, the escalator, the trail relay and the JetStream consumers (signals,
and issued DSMB reports), and answers ack / delivery-log / state / flush requests over NATS;
`await stop()` shuts down gracefully. The read models are `services.notify.app.queries`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID
from zoneinfo import ZoneInfo

import nats.js.errors
from faststream.nats import NatsBroker
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from kit.auth import TokenStore
from kit.jetstream import BatchConsumer, ensure_stream
from kit.metrics import Observability, new_registry
from schemas import DUPLICATE_WINDOW_SECONDS, NOTIFY_DURABLE, Subjects
from schemas.snapshots import SnapshotReport
from schemas.subjects import NOTIFY_REPORTS_DURABLE
from services.notify.adapters.audit_export import (
    AUDIT_TRAIL_FILE,
    build_snapshot_responder,
    snapshot_subject,
)
from services.notify.adapters.duckdb_store import DuckDBNotificationStore
from services.notify.adapters.http_api import build_http_app
from services.notify.adapters.http_server import HttpServer, load_or_create_secret
from services.notify.adapters.metrics import MeteredMailer, NotifyMetrics, NotifyProbe
from services.notify.adapters.nats_requests import (
    ack_subject,
    build_responders,
    flush_digests_subject,
    log_subject,
    replying,
    state_subject,
)
from services.notify.adapters.nats_routes import build_report_handler, build_signal_handler
from services.notify.adapters.sent_journal import FileSentJournal
from services.notify.adapters.trail_relay import TrailRelay
from services.notify.app import Sender, SendPolicy, SignalIntake
from services.notify.app.alerts import Acknowledger, Escalator
from services.notify.app.queries import NotifyQueries
from services.notify.app.reports import ReportIntake
from services.notify.config import Settings
from services.notify.core.ack import AckClaims, sign_ack
from services.notify.core.audit import ChainCheck
from services.notify.core.digest import DigestSchedule
from services.notify.core.errors import RoutingFileError
from services.notify.core.failover import failover_plans
from services.notify.core.plan import NotificationPlan
from services.notify.core.routing import Routing, parse_routing
from services.notify.ports import (
    Clock,
    DeadLetter,
    DeliveryLogRow,
    Logger,
    Mailer,
    NotificationRow,
    OpenAlert,
    Renderer,
)

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


@dataclass(frozen=True, slots=True)
class Adapters:
    """What the service runs on, built (not opened, not connected) by main.build_app."""

    clock: Clock
    log: Logger
    #: A store per start (a closed DuckDB store does not open again).
    store: Callable[[], DuckDBNotificationStore]
    journal: FileSentJournal
    mailer: Mailer
    renderer: Renderer


class NotifyService:
    """The notify service in one process: JetStream consumers, outbox sender, read API."""

    def __init__(self, settings: Settings, adapters: Adapters) -> None:
        self.settings = settings
        self._adapters = adapters
        self._log = adapters.log
        #: The clock port: escalation timers, retry times and acknowledgement expiry read it.
        self.clock = adapters.clock
        self._store: DuckDBNotificationStore | None = None
        self._journal: FileSentJournal | None = None
        self._queries: NotifyQueries | None = None
        self._broker: NatsBroker | None = None
        self._sender: Sender | None = None
        self._consumers: list[BatchConsumer] = []
        self._subs: list[Subscription] = []
        self._http: HttpServer | None = None
        self._escalator: Escalator | None = None
        self._relay: TrailRelay | None = None
        self.acknowledger: Acknowledger | None = None
        self.http_port: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.metrics = NotifyMetrics(registry := new_registry())
        self._registry = registry
        self._probe = NotifyProbe(
            self.metrics, durable=NOTIFY_DURABLE, open_alerts=self.open_alerts,
            clock=self.clock.now,
        )  # fmt: skip

    async def start(self) -> None:
        """Start everything and return once the consumers are bound to their streams."""
        settings = self.settings
        routing = load_routing(settings.routing)  # first: a bad file fails before any I/O
        self._stopping = False
        try:
            store = self._store = self._adapters.store()
            await asyncio.to_thread(store.open)
            queries = self._queries = NotifyQueries(store, clock=self.clock, on_flushed=self._wake)
            journal = self._journal = self._adapters.journal
            await asyncio.to_thread(journal.open)
            key = await asyncio.to_thread(self._ack_key)
            base_url = await self._start_http(store, key)
            js = await self._connect()
            subjects = Subjects(settings.namespace)
            assert self._broker is not None  # noqa: S101 - connected just before
            self._probe.attach(
                self._broker.connection,
                lambda: js.consumer_info(subjects.signals_stream, NOTIFY_DURABLE),
            )
            sender = self._sender = self._build_sender(routing, key=key, base_url=base_url)
            self._consumers = [
                self._signal_consumer(js, routing),
                self._report_consumer(js, routing),
            ]
            self._escalator = Escalator(
                store=store, routing=routing, clock=self.clock,
                log=self.metrics.escalation_log(self._log),
                delay=timedelta(minutes=settings.escalation_minutes), on_recorded=sender.wake,
                tick_seconds=settings.escalation_tick_seconds,
            )  # fmt: skip
            # Notify's facts reach its stream from the committed trail, never from inside a
            # transaction: what a crash interrupts is published at the next start. The relay
            # makes its stream itself, in its own supervised task: a stream it cannot reach
            # delays that publication, never an alert email.
            self._relay = TrailRelay(js, store, namespace=settings.namespace, log=self._log)
            for name, run in (
                ("sender", sender.run),
                ("signal-consumer", self._consumers[0].run),
                ("report-consumer", self._consumers[1].run),
                ("escalator", self._escalator.run),
                ("trail-relay", self._relay.run),
            ):
                self._spawn(name, run)
            await self._wait_ready(js, subjects.signals_stream, NOTIFY_DURABLE)
            await self._wait_ready(js, subjects.reports_stream, NOTIFY_REPORTS_DURABLE)
            await self._serve_requests(queries)
        except BaseException:
            await self.stop()
            raise
        self._log.info("notify_started", namespace=settings.namespace, durable=NOTIFY_DURABLE)

    def _signal_consumer(self, js: JetStreamContext, routing: Routing) -> BatchConsumer:
        """The durable on the signals stream: each signal becomes its intended emails."""
        settings = self.settings
        assert self._store is not None and self._sender is not None  # noqa: S101 - start() order
        display_tz = ZoneInfo(settings.display_timezone)
        intake = SignalIntake(
            store=self._store, routing=routing, clock=self.clock, log=self._log,
            consumer=NOTIFY_DURABLE, on_recorded=self._sender.wake, display_tz=display_tz,
            digests=DigestSchedule(
                tz=display_tz, hour=settings.digest_hour,
                dsmb_weekday=settings.dsmb_digest_weekday,
            ),
        )  # fmt: skip
        return BatchConsumer(
            js,
            stream=Subjects(settings.namespace).signals_stream,
            durable=NOTIFY_DURABLE,
            handler=build_signal_handler(self.metrics.observe_intake(intake), log=self._log),
            max_batch=settings.max_batch,
        )

    def _report_consumer(self, js: JetStreamContext, routing: Routing) -> BatchConsumer:
        """The durable on the reports stream: each issued DSMB report becomes its emails."""
        assert self._store is not None and self._sender is not None  # noqa: S101 - start() order
        intake = ReportIntake(
            store=self._store, routing=routing, clock=self.clock, log=self._log,
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
        # The report service owns the reports stream; whoever starts first creates it, with
        # the same settings (ensure_stream never changes an existing stream).
        for name, filter_ in (
            (subjects.signals_stream, subjects.signals_filter),
            (subjects.reports_stream, subjects.reports_filter),
        ):
            await ensure_stream(
                js, name=name, subjects=filter_, duplicate_window=DUPLICATE_WINDOW_SECONDS
            )
        return js

    async def _serve_requests(self, queries: NotifyQueries) -> None:
        """Answer snapshot, ack, delivery-log, state and flush requests over NATS."""
        assert self._broker is not None and self.acknowledger is not None  # noqa: S101 - started
        assert self._store is not None  # noqa: S101 - opened by start() before
        namespace = self.settings.namespace
        snapshot = build_snapshot_responder(
            self.export_snapshot, default_root=self.settings.data_dir / "exports", log=self._log
        )
        responders = build_responders(self.acknowledger, self._store, log=self._log)
        # state and flush are for a caller in another process (the supervised demo).
        for subject, respond in (
            (snapshot_subject(namespace), snapshot),
            (ack_subject(namespace), responders["ack"]),
            (log_subject(namespace), responders["log"]),
            (state_subject(namespace), replying(queries.state, self._log)),
            (flush_digests_subject(namespace), replying(queries.flushed, self._log)),
        ):
            self._subs.append(await self._broker.connection.subscribe(subject, cb=respond))

    async def export_snapshot(self, directory: Path) -> SnapshotReport:
        """Write the audit trail and outbox as Parquet into `directory` from this process.

        Returns the directory and, per file, its path, rows and sha256, with the audit
        trail's chain summary (first and last seq, head hash) read in the same transaction.
        """
        if self._store is None:
            msg = "notify service is not started"
            raise RuntimeError(msg)
        files = await self._store.export_snapshot(directory)
        trail = files[AUDIT_TRAIL_FILE]
        self._log.info("audit_snapshot_written", rows=trail["rows"], head=trail["chain"]["head"])
        return {"service": "notify", "directory": str(directory), "files": files}

    def _build_sender(self, routing: Routing, *, key: bytes, base_url: str) -> Sender:
        settings = self.settings
        ttl = timedelta(hours=settings.ack_ttl_hours)
        assert self._store is not None and self._journal is not None  # noqa: S101 - opened first

        def ack_link(plan: NotificationPlan, now: datetime) -> str:
            claims = AckClaims(plan.notification_id, plan.signal_id, now + ttl)
            return f"{base_url}/v1/ack?token={sign_ack(claims, key=key)}"

        def failover(plan: NotificationPlan, error: str) -> tuple[NotificationPlan, ...]:
            return failover_plans(plan, routing, error=error)

        clock = self.clock
        return Sender(
            store=self._store,
            mailer=MeteredMailer(self._adapters.mailer, self.metrics, clock=clock.now),
            renderer=self._adapters.renderer,
            clock=clock,
            ack_link=ack_link,
            failover=failover,
            journal=self._journal,
            log=self._log,
            policy=SendPolicy(
                base_seconds=settings.retry_base_seconds,
                cap_seconds=settings.retry_cap_seconds,
                burst=settings.send_burst,
            ),
        )

    def _wake(self) -> None:
        if self._sender is not None:
            self._sender.wake()

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
                self._log.error("notify_task_crashed", task=name, failures=failures, exc_info=True)
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
        for stoppable in (*self._consumers, self._sender, self._escalator, self._relay):
            if stoppable is not None:
                stoppable.stop()
        if self._http is not None:
            http, self._http = self._http, None
            await http.stop()
        await self._unsubscribe()
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
        self._consumers, self._queries = [], None
        self._sender = self._escalator = self.acknowledger = self._relay = None
        self._log.info("notify_stopped")

    async def _unsubscribe(self) -> None:
        subs, self._subs = self._subs, []
        for sub in subs:
            try:
                await sub.unsubscribe()
            except Exception as exc:  # the connection closes next anyway; the error is logged
                self._log.warning("snapshot_unsubscribe_failed", error=type(exc).__name__)

    async def _drain_tasks(self) -> None:
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        # The consumers' long polls end at stop(); a send may take up to the SMTP timeout.
        _, late = await asyncio.wait(tasks, timeout=self.settings.smtp_timeout + 2.0)
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # The read side, for in-process callers (runner, demo, tests); see app/queries.py.

    async def notifications(self, signal_id: UUID | str | None = None) -> list[NotificationRow]:
        """Return the outbox rows (all, or one signal's), read through the owning service."""
        return await self._started().notifications(signal_id)

    async def delivery_log(
        self, *, signal_id: UUID | None = None, participant_id: str | None = None
    ) -> list[DeliveryLogRow]:
        """Every attempt, reply, acknowledgement and escalation of a signal or participant."""
        return await self._started().delivery_log(
            signal_id=signal_id, participant_id=participant_id
        )

    async def flush_digests(self) -> int:
        """Send every held digest now instead of at its scheduled time; return rows moved."""
        return await self._started().flush_digests()

    async def open_alerts(self) -> list[OpenAlert]:
        """Unacknowledged open U0 alerts, oldest first (the demo's duty officer reads these)."""
        return await self._started().open_alerts()

    async def unsent_count(self) -> int:
        """Count notifications still intended and unconfirmed (the runner's "settled" check)."""
        return await self._started().unsent_count()

    async def dead_letters(self) -> list[DeadLetter]:
        """Return deliveries that were not valid signals (kept for a human to look at)."""
        return await self._started().dead_letters()

    async def verify_audit(self) -> ChainCheck:
        """Verify the notify audit trail's hash chain."""
        return await self._started().verify_audit()

    @property
    def queries(self) -> NotifyQueries:
        """The read models over this process's store (while started)."""
        return self._started()

    def _started(self) -> NotifyQueries:
        if self._queries is None:
            msg = "notify service is not started"
            raise RuntimeError(msg)
        return self._queries
