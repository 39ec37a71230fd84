"""Lifecycle of the console: consume the three streams, project them, serve the pages.

`await start()` opens the console's DuckDB file, connects to NATS, makes sure the three
streams exist (with the settings their owners use), starts one durable pull consumer per
stream and serves the pages; `await stop()` ends the live streams, the consumers and the
server, then closes NATS and the file. Built by services.console.main.build_app.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import timedelta

import nats
import structlog
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from nats.aio.client import Client
from nats.js import JetStreamContext

from kit.auth import TokenStore
from kit.embedded_http import EmbeddedHttpServer
from kit.http_limits import BodyLimits, server_options
from kit.jetstream import BatchConsumer, ensure_stream
from kit.tasks import Supervisor
from schemas import DUPLICATE_WINDOW_SECONDS, Subjects
from services.console.adapters.duckdb_projection import DuckDBProjection
from services.console.adapters.feed import build_consumers
from services.console.adapters.live import LiveHub
from services.console.adapters.notify_client import NotifyAcknowledgements
from services.console.adapters.reports_client import ReportsClient
from services.console.adapters.sessions import SessionStore
from services.console.adapters.web_auth import Guard, SecurityHeaders, install_auth
from services.console.adapters.web_dsmb import install_dsmb
from services.console.adapters.web_pages import install_audit, install_pages
from services.console.adapters.web_render import STATIC, Pages
from services.console.app import Projector, Views
from services.console.config import Settings
from services.console.ports import Clock

_MAX_BODY_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class Adapters:
    """What the console runs on, built (not opened, not connected) by main.build_app."""

    clock: Clock
    projection: DuckDBProjection
    hub: LiveHub


class ConsoleService:
    """The console in one process: three stream consumers, one projection, the pages."""

    def __init__(self, settings: Settings, adapters: Adapters) -> None:
        self.settings = settings
        self._log = structlog.get_logger("services.console")
        self.hub = adapters.hub
        self.projection = adapters.projection
        self._clock = adapters.clock
        self._nc: Client | None = None
        self._consumers: list[BatchConsumer] = []
        # A crashed consumer is logged and restarted with backoff; only stop() ends it.
        self._tasks = Supervisor(self._log, crash_event="console_task_crashed")
        self._http: EmbeddedHttpServer | None = None
        self.http_port: int | None = None

    @property
    def url(self) -> str:
        """Where the pages are served."""
        return f"http://{self.settings.console_http_host}:{self.http_port}"

    async def start(self) -> None:
        """Open, connect, consume, serve; on any failure undo what was started."""
        settings = self.settings
        try:
            await asyncio.to_thread(self.projection.open)
            js = await self._connect()
            projector = Projector(self.projection, self.hub, self._log)
            self._consumers = build_consumers(
                js, projector, namespace=settings.namespace, max_batch=settings.max_batch
            )
            for consumer in self._consumers:
                self._tasks.spawn(consumer.run)
            await asyncio.gather(*(c.ready.wait() for c in self._consumers))
            self._http = EmbeddedHttpServer(
                self._build_api(),
                host=settings.console_http_host,
                port=settings.console_http_port,
                name="console-http",
                **server_options(),
            )
            self.http_port = await self._http.start()
        except BaseException:
            await self.stop()
            raise
        self._log.info("console_started", url=self.url, namespace=settings.namespace)

    async def _connect(self) -> JetStreamContext:
        self._nc = await nats.connect(
            self.settings.nats_url.split(","),  # every server of a cluster
            max_reconnect_attempts=-1,
            **self.settings.nats_connect_options(),
        )
        js = self._nc.jetstream()
        s = Subjects(self.settings.namespace)
        # The owners create these with the same settings; whoever starts first wins, and
        # ensure_stream never changes an existing stream.
        for name, subjects in (
            (s.facts_stream, s.facts_filter),
            (s.signals_stream, s.signals_filter),
            (s.notify_stream, s.notify_subject("*")),
        ):
            await ensure_stream(
                js, name=name, subjects=subjects, duplicate_window=DUPLICATE_WINDOW_SECONDS
            )
        return js

    def _build_api(self) -> FastAPI:
        settings = self.settings
        bootstrap = settings.bootstrap_token
        tokens = TokenStore(
            settings.tokens_path,
            bootstrap_secret=bootstrap.get_secret_value() if bootstrap else None,
        )
        clock = self._clock
        sessions = SessionStore(
            idle=timedelta(minutes=settings.console_idle_minutes), now=clock.now
        )
        guard = Guard(sessions, tokens, secure=settings.console_secure_cookies)
        pages = Pages()
        api = FastAPI(title="safetymon console", openapi_url=None, docs_url=None, redoc_url=None)
        api.add_middleware(BodyLimits, max_bytes=_MAX_BODY_BYTES)
        api.add_middleware(SecurityHeaders)
        api.mount("/static", StaticFiles(directory=STATIC), name="static")
        install_auth(api, guard, pages)
        views = Views(self.projection, clock)
        install_audit(api, guard, views, pages)
        install_dsmb(api, guard, pages, ReportsClient(settings.reports_url))
        install_pages(
            api,
            guard,
            views,
            pages,
            acks=NotifyAcknowledgements(settings.notify_url),
            hub=self.hub,
        )
        return api

    async def stop(self) -> None:
        """End live streams, consumers and the server; close NATS and the file."""
        self._tasks.halt()
        self.hub.close()
        if self._http is not None:
            http, self._http = self._http, None
            await http.stop()
        for consumer in self._consumers:
            consumer.stop()
        await self._tasks.stop(timeout=5.0)
        if self._nc is not None:
            nc, self._nc = self._nc, None
            with contextlib.suppress(Exception):
                await nc.close()
        with contextlib.suppress(RuntimeError):
            await asyncio.to_thread(self.projection.close)
        self._log.info("console_stopped")
