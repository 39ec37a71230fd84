"""Lifecycle of the notify service: start, supervise and stop what main.build_app wired.

`await start()` validates the routing file, opens DuckDB and the sent journal, serves
acknowledgement links over HTTP, connects to NATS, ensures the signals and reports streams
and starts the sender, the escalator, the trail relay and the JetStream consumers (signals,
and issued DSMB reports), and answers ack / delivery-log / state / flush requests over NATS;
`await stop()` shuts down gracefully. What the consumers and the sender are made of is in
`services.notify.pipeline`, what the service answers in `services.notify.endpoints`, the
read models in `services.notify.app.queries`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from faststream.nats import NatsBroker
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from kit.jetstream import BatchConsumer
from kit.metrics import Observability, new_registry
from kit.tasks import Supervisor
from schemas import NOTIFY_DURABLE, Subjects
from schemas.snapshots import SnapshotReport
from services.notify.adapters.audit_export import AUDIT_TRAIL_FILE
from services.notify.adapters.duckdb_store import DuckDBNotificationStore
from services.notify.adapters.http_server import HttpServer
from services.notify.adapters.metrics import NotifyMetrics, NotifyProbe
from services.notify.adapters.sent_journal import FileSentJournal
from services.notify.adapters.trail_relay import TrailRelay
from services.notify.app import Sender
from services.notify.app.alerts import Acknowledger, Escalator
from services.notify.app.queries import NotifyQueries
from services.notify.config import Settings
from services.notify.core.audit import ChainCheck
from services.notify.core.errors import RoutingFileError
from services.notify.core.routing import Routing, parse_routing
from services.notify.endpoints import http_server, subscribe_requests, unsubscribe
from services.notify.pipeline import (
    ack_key,
    build_sender,
    ensure_streams,
    escalator,
    report_consumer,
    signal_consumer,
    wait_bound,
)
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
        # A crashed loop is logged at error level and restarted with backoff: a lost sender
        # would leave an SAE unsent, so nothing ends a loop but stop().
        self._tasks = Supervisor(self._log, crash_event="notify_task_crashed", prefix="notify")
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
        try:
            store = self._store = self._adapters.store()
            await asyncio.to_thread(store.open)
            queries = self._queries = NotifyQueries(store, clock=self.clock, on_flushed=self._wake)
            journal = self._journal = self._adapters.journal
            await asyncio.to_thread(journal.open)
            key = await asyncio.to_thread(ack_key, settings)
            acknowledger = Acknowledger(store=store, clock=self.clock, log=self._log, key=key)
            self.acknowledger = acknowledger
            base_url = await self._start_http(store, acknowledger)
            js = await self._connect()
            signals = Subjects(settings.namespace).signals_stream
            assert self._broker is not None  # noqa: S101 - connected just before
            self._probe.attach(
                self._broker.connection, lambda: js.consumer_info(signals, NOTIFY_DURABLE)
            )
            sender = self._sender = build_sender(
                settings=settings, routing=routing, store=store, journal=journal,
                mailer=self._adapters.mailer, renderer=self._adapters.renderer, clock=self.clock,
                log=self._log, metrics=self.metrics, key=key, base_url=base_url,
            )  # fmt: skip
            self._consumers = [
                signal_consumer(
                    js, settings=settings, routing=routing, store=store, clock=self.clock,
                    log=self._log, metrics=self.metrics, wake=sender.wake,
                ),
                report_consumer(
                    js, settings=settings, routing=routing, store=store, clock=self.clock,
                    log=self._log, wake=sender.wake,
                ),
            ]  # fmt: skip
            self._escalator = escalator(
                settings=settings, routing=routing, store=store, clock=self.clock,
                log=self.metrics.escalation_log(self._log), wake=sender.wake,
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
                self._tasks.spawn(run, name=name)
            await wait_bound(js, settings.namespace)
            await subscribe_requests(
                self._broker.connection, self._subs, settings=settings,
                export=self.export_snapshot, acknowledger=acknowledger, store=store,
                queries=queries, log=self._log,
            )  # fmt: skip
        except BaseException:
            await self.stop()
            raise
        self._log.info("notify_started", namespace=settings.namespace, durable=NOTIFY_DURABLE)

    async def _start_http(self, store: DuckDBNotificationStore, acknowledger: Acknowledger) -> str:
        """Serve acknowledgement links and the delivery log; return the links' base URL."""
        settings = self.settings
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
        observability = Observability(
            self._registry, self._probe.refresh, self._probe.ready, token or None
        )
        self._http = http_server(
            settings, acknowledger=acknowledger, store=store,
            observability=observability, log=self._log,
        )  # fmt: skip
        self.http_port = await self._http.start()
        base = settings.notify_public_url or f"http://{settings.notify_http_host}:{self.http_port}"
        return base.rstrip("/")

    async def _connect(self) -> JetStreamContext:
        """Connect to NATS through faststream and make sure the consumers' streams exist."""
        self._broker = NatsBroker(
            # every server of a cluster (comma-separated URLs); never stop reconnecting
            self.settings.nats_url.split(","),
            max_reconnect_attempts=-1,
            **self.settings.nats_broker_options(),
        )
        await self._broker.connect()
        js = self._broker.connection.jetstream()
        await ensure_streams(js, self.settings.namespace)
        return js

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

    def _wake(self) -> None:
        if self._sender is not None:
            self._sender.wake()

    async def stop(self) -> None:
        """Stop taking signals, let the message in hand finish, close NATS and DuckDB."""
        self._tasks.halt()
        for stoppable in (*self._consumers, self._sender, self._escalator, self._relay):
            if stoppable is not None:
                stoppable.stop()
        if self._http is not None:
            http, self._http = self._http, None
            await http.stop()
        subs, self._subs = self._subs, []
        await unsubscribe(subs, log=self._log)
        # The consumers' long polls end at stop(); a send may take up to the SMTP timeout.
        await self._tasks.stop(timeout=self.settings.smtp_timeout + 2.0)
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
