"""Lifecycle of the ingest service: HTTP API, hash-chained log and relay to JetStream.

`await start()` connects, verifies and opens the log, starts the relay (republishing
anything unconfirmed), the head anchor, the clock ticker and the HTTP server; `await
stop()` lets the relay finish its cycle and closes everything. Built by
services.ingest.main.build_app.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
import uvicorn
from faststream.nats import NatsBroker

from kit.auth import TokenStore
from kit.http_limits import server_options
from kit.jetstream import ensure_stream
from kit.metrics import Observability, new_registry
from schemas import DUPLICATE_WINDOW_SECONDS, Subjects
from schemas.snapshots import SnapshotReport
from services.ingest.adapters.audit_export import EVENT_LOG_FILE, AuditExports
from services.ingest.adapters.duckdb_log import DuckDBEventLog
from services.ingest.adapters.head_anchor import JetStreamHeadAnchor
from services.ingest.adapters.http_api import build_http_app
from services.ingest.adapters.metrics import IngestMetrics, IngestProbe
from services.ingest.adapters.nats_publisher import JetStreamPublisher
from services.ingest.adapters.ticker import Ticker
from services.ingest.app import HeadPublisher, Ingest, Outcome, Relay
from services.ingest.config import Settings
from services.ingest.core.errors import LogIntegrityError
from services.ingest.ports import Clock


@dataclass(frozen=True, slots=True)
class Adapters:
    """What the service runs on, built (not opened, not connected) by main.build_app."""

    clock: Clock
    event_log: DuckDBEventLog
    tokens: TokenStore


log = structlog.get_logger(__name__)


class IngestService:
    """The ingest service: HTTP API + log + relay to JetStream. Nothing connects until start()."""

    def __init__(self, settings: Settings, adapters: Adapters, *, http: bool = True) -> None:
        self.settings = settings
        self._subjects = Subjects(settings.namespace)
        self._http_enabled = http
        self._broker = NatsBroker(
            settings.nats_url.split(","),
            max_reconnect_attempts=-1,
            **settings.nats_broker_options(),
        )
        self._log = adapters.event_log
        self._tokens = adapters.tokens
        self._clock = adapters.clock
        self._ingest: Ingest | None = None
        self._relay: Relay | None = None
        self._ticker: Ticker | None = None
        self._heads: HeadPublisher | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._server: uvicorn.Server | None = None
        self.http_port: int | None = None
        self.metrics = IngestMetrics(registry := new_registry())
        self._registry = registry
        self._probe: IngestProbe | None = None

    async def start(self) -> None:
        """Connect, open the log, start the relay (republishing anything unconfirmed) and HTTP."""
        await self._broker.connect()
        js = self._broker.connection.jetstream()
        await ensure_stream(
            js,
            name=self._subjects.facts_stream,
            subjects=self._subjects.facts_filter,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            replicas=self.settings.stream_replicas,
        )
        anchor = JetStreamHeadAnchor(js, self.settings.namespace)
        await anchor.ensure()
        await self._open_checked(anchor)
        self._heads = HeadPublisher(
            log=self._log, anchor=anchor, clock=self._clock,
            period=self.settings.head_anchor_seconds,
        )  # fmt: skip
        await self._heads.publish_now()
        self._tasks.append(asyncio.create_task(self._heads.run(), name="ingest-heads"))
        self._relay = Relay(
            log=self._log,
            publisher=JetStreamPublisher(js, self._subjects, partitions=self.settings.partitions),
            chunk=self.settings.publish_batch,
        )
        self._ingest = Ingest(log=self._log, relay=self._relay, clock=self._clock)
        facts_stream = self._subjects.facts_stream
        self._probe = IngestProbe(
            self.metrics, log=self._log, relay=self._relay, nc=self._broker.connection,
            stream_probe=lambda: js.stream_info(facts_stream),
        )  # fmt: skip
        self._tasks.append(asyncio.create_task(self._relay.run(), name="ingest-relay"))
        if self.settings.clock_tick_seconds > 0:
            ticker = Ticker(
                self._ingest.record_tick,
                trials=self.settings.clock_trials,
                period_seconds=self.settings.clock_tick_seconds,
            )
            self._ticker = ticker
            self._tasks.append(asyncio.create_task(ticker.run(), name="ingest-clock"))
        if self._http_enabled:
            await self._start_http()
        log.info("ingest_started", http_port=self.http_port, namespace=self.settings.namespace)
        if self._http_enabled and self.settings.bootstrap_token is not None:
            # Visible in every deployment's log: a bootstrap admin is for demos and tests.
            log.warning("bootstrap_token_enabled", tokens_file=str(self.settings.tokens_path))

    async def _open_checked(self, anchor: JetStreamHeadAnchor) -> None:
        """Open the log only if its tail verifies and it holds the last published head.

        A break stops the service (the exception ends `start`, the process exits non-zero and
        `safetymon up` restarts and logs it until someone looks): nothing is appended to a
        chain that no longer verifies, and no alert is sent from a log that was rewritten.
        """
        try:
            self._log.open()
            latest = await anchor.latest()
            if latest is not None:
                try:
                    self._log.check_anchor(latest)
                except LogIntegrityError:
                    self._log.close()
                    raise
        except LogIntegrityError as exc:
            log.error("event_log_integrity_failed", problem=str(exc))  # noqa: TRY400 - the problem says it all
            await self._broker.stop()
            raise

    async def submit(self, items: Sequence[object], *, actor: str) -> list[Outcome]:
        """Submit items in-process (CLI --direct, demo, benchmarks)."""
        if self._ingest is None:
            raise RuntimeError("ingest service is not started")
        outcomes = await self._ingest.submit(items, actor=actor)
        self.metrics.count(outcomes)
        return outcomes

    async def drained(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109 - a deadline is the point
        """Wait until JetStream has confirmed everything appended so far."""
        if self._relay is not None:
            await self._relay.drained(timeout)

    async def export_snapshot(self, directory: Path) -> SnapshotReport:
        """Write `event_log.parquet` into `directory` from this process (the file's only writer).

        Returns the directory and, per file, its path, rows, sha256 and chain summary
        (first and last seq, head hash), all describing the same moment of the log.
        """
        if self._ingest is None:
            raise RuntimeError("ingest service is not started")
        summary = await self._log.export_snapshot(directory)
        log.info("audit_snapshot_written", rows=summary["rows"], head=summary["chain"]["head"])
        return {
            "service": "ingest",
            "directory": str(directory),
            "files": {EVENT_LOG_FILE: summary},
        }

    async def stop(self) -> None:
        """Stop HTTP, let the relay finish its cycle, close the log and the connection."""
        if self._server is not None:
            self._server.should_exit = True
        if self._ticker is not None:
            self._ticker.stop()
        if self._heads is not None:
            self._heads.stop()
        if self._relay is not None:
            with contextlib.suppress(TimeoutError):
                await self._relay.drained(5.0)
            self._relay.stop()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, 10.0)
        self._tasks.clear()
        self._log.close()
        await self._broker.stop()
        log.info("ingest_stopped")

    async def _start_http(self) -> None:
        assert self._ingest is not None  # noqa: S101 - set by start() just before
        audit = AuditExports(root=self.settings.data_dir / "exports", export=self.export_snapshot)
        assert self._probe is not None  # noqa: S101 - set by start() with the relay
        token = self.settings.metrics_token
        observability = Observability(
            self._registry, self._probe.refresh, self._probe.ready,
            scrape_token=(token.get_secret_value() or None) if token else None,
        )  # fmt: skip
        api = build_http_app(
            self._ingest, self._log, tokens=self._tokens, audit=audit,
            metrics=self.metrics, observability=observability,
        )  # fmt: skip
        config = uvicorn.Config(
            api,
            host=self.settings.http_host,
            port=self.settings.http_port,
            log_config=None,
            access_log=False,
            lifespan="off",
            **server_options(),  # slow clients: header deadline, keep-alive, concurrency
        )
        self._server = uvicorn.Server(config)
        self._tasks.append(asyncio.create_task(self._server.serve(), name="ingest-http"))
        while not self._server.started:
            if self._tasks[-1].done():
                await self._tasks[-1]  # surfaces the bind error
                msg = f"HTTP server stopped while starting on port {self.settings.http_port}"
                raise RuntimeError(msg)
            await asyncio.sleep(0.01)
        sockets = self._server.servers[0].sockets
        self.http_port = int(sockets[0].getsockname()[1])
