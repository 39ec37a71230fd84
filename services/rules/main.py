"""Composition root of the rules service: wires NATS, DuckDB, the edge and the relay.

Nothing connects at import time. Run alone with `python -m services.rules.main`, or embed
`build_service(settings)` with `await service.start()` / `await service.stop()`. The running
service also answers audit snapshot requests (`signals.parquet`,
`rules_config_history.parquet`) over NATS request/reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nats.js.errors
import structlog
from faststream.nats import NatsBroker

from kit.jetstream import Delivery, LaneConsumer, ensure_stream
from kit.logging import configure_logging
from kit.metrics import Observability, new_registry
from schemas import DUPLICATE_WINDOW_SECONDS, RULES_DURABLE, Subjects
from services.rules.adapters.audit_export import (
    CONFIG_HISTORY_FILE,
    SIGNALS_FILE,
    build_snapshot_responder,
    snapshot_subject,
)
from services.rules.adapters.duckdb_store import DuckDBRulesStore
from services.rules.adapters.metrics import MeteredStore, MetricsServer, RulesMetrics, RulesProbe
from services.rules.adapters.nats_routes import build_handler, lane_of
from services.rules.adapters.relay import OutboxRelay
from services.rules.adapters.trial_config import load_trial_source
from services.rules.config import Settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nats.aio.subscription import Subscription
    from nats.js import JetStreamContext

    from services.rules.ports import RulesStore

log = structlog.get_logger("services.rules")
READY_TIMEOUT_S = 10.0


class RulesService:
    """The rules service in one object: `start()` when ready to consume, `stop()` cleanly."""

    def __init__(self, settings: Settings, *, store: RulesStore | None = None) -> None:
        self.settings = settings
        # The identity (exact text, sha256) is recorded with the first batch evaluated under
        # this configuration when it differs from the last one recorded (issue 5).
        self.trial_config, self.config_identity = load_trial_source(settings.trial_config)
        self.subjects = Subjects(settings.namespace)
        signal_subject = self.subjects.signal_subject("signal_raised")
        self.store: RulesStore = store or DuckDBRulesStore(
            settings.duckdb_path,
            signal_subject=signal_subject,
            updated_subject=self.subjects.signal_subject("signal_updated"),
        )
        self._broker: NatsBroker | None = None
        self._consumer: LaneConsumer | None = None
        self._relay: OutboxRelay | None = None
        self._relay_task: asyncio.Task[None] | None = None
        self._consumer_task: asyncio.Task[None] | None = None
        self._first_batch = asyncio.Event()
        self._snapshot_sub: Subscription | None = None
        self.metrics = RulesMetrics(registry := new_registry())
        self._registry = registry
        self._metrics_server: MetricsServer | None = None
        self.metrics_port: int | None = None

    async def start(self) -> None:
        """Connect, ensure streams, open storage, start relay and consumer; return once ready."""
        try:
            js = await self._connect()
            await self.store.open()
            await self._serve_snapshots()
            self._launch(js)
            await self._wait_ready(js)
            await self._serve_metrics(js)
        except BaseException:
            await self.stop()  # leave nothing half-started behind
            raise
        log.info(
            "service_started",
            service="rules",
            namespace=self.settings.namespace,
            config_version=self.trial_config.version,
            config_sha256=self.config_identity.sha256,
        )

    async def _connect(self) -> JetStreamContext:
        self._broker = NatsBroker(self.settings.nats_url, **self.settings.nats_broker_options())
        await self._broker.connect()
        js = self._broker.connection.jetstream()
        for name, subjects in (
            (self.subjects.facts_stream, self.subjects.facts_filter),
            (self.subjects.signals_stream, self.subjects.signals_filter),
        ):
            await ensure_stream(
                js, name=name, subjects=subjects, duplicate_window=DUPLICATE_WINDOW_SECONDS
            )
        return js

    async def _serve_metrics(self, js: JetStreamContext) -> None:
        """Serve /metrics and the health probes when SAFETYMON_METRICS_PORT is set."""
        settings = self.settings
        if not settings.metrics_port:
            return
        assert self._broker is not None  # noqa: S101 - connected by _connect() before
        stream = self.subjects.facts_stream
        probe = RulesProbe(
            self.metrics, durable=RULES_DURABLE, nc=self._broker.connection,
            consumer_info=lambda: js.consumer_info(stream, RULES_DURABLE),
            consuming=lambda: self._consumer_task is not None and not self._consumer_task.done(),
        )  # fmt: skip
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
        obs = Observability(self._registry, probe.refresh, probe.ready, token or None)
        server = self._metrics_server = MetricsServer(
            obs, host=settings.metrics_host, port=settings.metrics_port
        )
        self.metrics_port = await server.start()

    async def _serve_snapshots(self) -> None:
        """Answer audit snapshot requests: only this process may read its DuckDB file."""
        assert self._broker is not None  # noqa: S101 - connected by _connect() just before
        respond = build_snapshot_responder(
            self.export_snapshot, default_root=self.settings.data_dir / "exports", log=log
        )
        subject = snapshot_subject(self.settings.namespace)
        self._snapshot_sub = await self._broker.connection.subscribe(subject, cb=respond)

    async def export_snapshot(self, directory: Path) -> dict[str, Any]:
        """Write the signals and config history into `directory` (this file's only writer).

        Returns the directory and each file's path, rows and sha256.
        """
        if not isinstance(self.store, DuckDBRulesStore):
            raise TypeError("this rules service keeps no DuckDB file: nothing to snapshot")
        files = await self.store.export_snapshot(directory)
        log.info(
            "audit_snapshot_written",
            rows=files[SIGNALS_FILE]["rows"],
            config_history_rows=files[CONFIG_HISTORY_FILE]["rows"],
        )
        return {"service": "rules", "directory": str(directory), "files": files}

    def _launch(self, js: JetStreamContext) -> None:
        self._relay = OutboxRelay(self.store, js, stream=self.subjects.signals_stream, log=log)
        handler = build_handler(
            store=MeteredStore(self.store, self.metrics),
            consumer=RULES_DURABLE,
            log=log,
            on_committed=self._relay.wake,
            config=self.trial_config,
            identity=self.config_identity,
        )

        async def observed(deliveries: Sequence[Delivery]) -> None:
            self._first_batch.set()
            with self.metrics.group_seconds.time():
                await handler(deliveries)

        self._consumer = LaneConsumer(
            js,
            stream=self.subjects.facts_stream,
            durable=RULES_DURABLE,
            handler=observed,
            keyer=lane_of,
            window=self.settings.rules_window,
            max_group=self.settings.rules_batch,
            quantum=self.settings.rules_quantum,
            ack_wait=self.settings.rules_ack_wait,
        )
        self._relay_task = asyncio.create_task(self._relay.run(), name="rules-relay")
        self._consumer_task = asyncio.create_task(self._consumer.run(), name="rules-consumer")

    async def stop(self) -> None:
        """Finish the batch in hand, flush the outbox, close storage and the connection."""
        if self._metrics_server is not None:
            await self._metrics_server.stop()
            self._metrics_server = None
        if self._consumer is not None:
            self._consumer.stop()
        await _finish(self._consumer_task, "rules-consumer")
        if self._relay is not None:
            self._relay.stop()
            await _finish(self._relay_task, "rules-relay")
            try:
                await self._relay.flush()
            except Exception as exc:  # rows stay in the outbox for the next start
                log.warning("signal_flush_failed", error=type(exc).__name__)
        self._consumer = self._relay = None
        self._consumer_task = self._relay_task = None
        await self._stop_snapshots()
        await self.store.close()
        if self._broker is not None:
            await self._broker.stop()
            self._broker = None
        log.info("service_stopped", service="rules")

    async def _stop_snapshots(self) -> None:
        sub, self._snapshot_sub = self._snapshot_sub, None
        if sub is None:
            return
        try:
            await sub.unsubscribe()
        except Exception as exc:  # the connection closes next anyway; the error is logged
            log.warning("snapshot_unsubscribe_failed", error=type(exc).__name__)

    async def _wait_ready(self, js: JetStreamContext) -> None:
        """Wait until the durable consumer is pulling (a pull waits, or a batch arrived)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            for task in (self._relay_task, self._consumer_task):
                if task is not None and task.done():
                    task.result()  # re-raise why it died
                    raise RuntimeError(f"{task.get_name()} ended during start")
            if self._first_batch.is_set() or await self._pulling(js):
                return
            await asyncio.sleep(0.02)
        raise TimeoutError("rules consumer did not become ready")

    async def _pulling(self, js: JetStreamContext) -> bool:
        try:
            info = await js.consumer_info(self.subjects.facts_stream, RULES_DURABLE)
        except nats.js.errors.NotFoundError:
            return False
        return bool(info.num_waiting)


async def _finish(task: asyncio.Task[None] | None, name: str) -> None:
    """Await a task that was asked to stop; log (never hide) how it ended."""
    if task is None:
        return
    try:
        await asyncio.wait_for(task, timeout=15.0)
    except TimeoutError:
        log.warning("task_cancelled_at_stop", task=name)
    except Exception as exc:  # stopping anyway; the reason is logged
        log.error("task_failed", task=name, error=type(exc).__name__)  # noqa: TRY400 - no traceback: it may quote data


def build_service(
    settings: Settings | None = None, *, store: RulesStore | None = None
) -> RulesService:
    """Build (without connecting) the rules service from settings, defaulting to the environment."""
    return RulesService(settings or Settings(), store=store)


async def run(settings: Settings | None = None) -> None:
    """Run the rules service alone until SIGINT or SIGTERM."""
    os.umask(0o077)  # its DuckDB file, WAL and exports are for the service account only
    settings = settings or Settings()
    configure_logging(settings.log_format, settings.log_level)
    service = build_service(settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stopping.set)
    await service.start()
    try:
        await stopping.wait()
    finally:
        await service.stop()


if __name__ == "__main__":
    asyncio.run(run())
