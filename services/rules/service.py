"""Lifecycle of the rules service (one worker): connect, claim partitions, serve, stop.

Each partition this worker holds has its own DuckDB file, durable consumer and outbox relay
(services.rules.partitions). The running service also answers audit snapshot requests
(`signals.parquet`, `rules_config_history.parquet`) over NATS request/reply. Built by
services.rules.main.build_app.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nats.errors
import nats.js.errors
import structlog
from faststream.nats import NatsBroker

from kit.jetstream import ensure_stream
from kit.metrics import Observability, new_registry
from schemas import DUPLICATE_WINDOW_SECONDS, Subjects
from schemas.snapshots import SnapshotReport
from schemas.subjects import partition_snapshot_subject, rules_durable
from services.rules.adapters.audit_export import (
    CONFIG_HISTORY_FILE,
    SIGNALS_FILE,
    build_snapshot_responder,
    snapshot_subject,
)
from services.rules.adapters.duckdb_store import DuckDBRulesStore
from services.rules.adapters.metrics import MetricsServer, RulesMetrics, RulesProbe
from services.rules.config import Settings
from services.rules.core.config import TrialConfig
from services.rules.partitions import Ownership, PartitionUnit
from services.rules.ports import ConfigIdentity, RulesStore

if TYPE_CHECKING:
    from nats.js import JetStreamContext


@dataclass(frozen=True, slots=True)
class Adapters:
    """What the worker runs on, built (not opened, not connected) by main.build_app."""

    trial_config: TrialConfig
    config_identity: ConfigIdentity
    #: The (unopened) store of a partition, made when the worker claims it.
    store: Callable[[int], RulesStore]


log = structlog.get_logger("services.rules")
READY_TIMEOUT_S = 10.0


class RulesService:
    """The rules service (one worker) in one object: `start()` when ready, `stop()` cleanly.

    The worker owns a set of the deployment's partitions (all of them when it is alone),
    each with its own DuckDB file, durable consumer and outbox relay (services.rules.partitions);
    it claims and hands back partitions as other workers come and go.
    """

    def __init__(self, settings: Settings, adapters: Adapters) -> None:
        self.settings = settings
        # The identity (exact text, sha256) is recorded with the first batch evaluated under
        # this configuration when it differs from the last one recorded.
        self.trial_config, self.config_identity = adapters.trial_config, adapters.config_identity
        self.subjects = Subjects(settings.namespace)
        self._new_store = adapters.store
        self._broker: NatsBroker | None = None
        self._js: JetStreamContext | None = None
        self._first_batch = asyncio.Event()
        self.metrics = RulesMetrics(registry := new_registry())
        self._registry = registry
        self._metrics_server: MetricsServer | None = None
        self.metrics_port: int | None = None
        self.ownership = Ownership(
            settings, self._unit, self._start_unit, before_stop=self._unit_stopping
        )
        self._ownership_task: asyncio.Task[None] | None = None

    @property
    def store(self) -> RulesStore:
        """The store of partition 0 (a single-partition service's rules.duckdb)."""
        unit = self.ownership.units.get(0)
        if unit is not None:
            return unit.store
        return self._new_store(0)

    def _unit(self, partition: int) -> PartitionUnit:
        return PartitionUnit(
            partition, self.settings, self._new_store(partition),
            self.metrics, self.trial_config, self.config_identity, on_batch=self._first_batch.set,
        )  # fmt: skip

    async def _start_unit(self, unit: PartitionUnit) -> None:
        assert self._js is not None and self._broker is not None  # noqa: S101 - connected first
        await unit.start(self._js)
        # The owner of a partition, and only it, answers the partition's snapshot requests
        # (one partition: the historical subject), as only it may open the file.
        n, store = self.settings.partitions, unit.store

        async def snapshot(directory: Path) -> SnapshotReport:
            return await self._snapshot_of(store, directory, partition=unit.partition)

        respond = build_snapshot_responder(
            snapshot, default_root=self.settings.data_dir / "exports", log=log
        )
        subject = partition_snapshot_subject(
            snapshot_subject(self.settings.namespace), unit.partition, n
        )
        unit.snapshot_sub = await self._broker.connection.subscribe(subject, cb=respond)

    async def _unit_stopping(self, unit: PartitionUnit) -> None:
        sub, unit.snapshot_sub = unit.snapshot_sub, None
        if sub is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                await sub.unsubscribe()

    @property
    def partitions(self) -> tuple[int, ...]:
        """The partitions this worker holds now."""
        return tuple(sorted(self.ownership.units))

    async def start(self) -> None:
        """Connect, ensure streams, claim partitions, start their consumers; return when ready."""
        try:
            js = self._js = await self._connect()
            await self.ownership.acquire_worker()
            await self.ownership.rebalance()
            self._ownership_task = asyncio.create_task(self.ownership.run(), name="rules-owner")
            await self._wait_ready(js)
            await self._serve_metrics(js)
        except BaseException:
            await self.stop()  # leave nothing half-started behind
            raise
        log.info(
            "service_started",
            service="rules",
            namespace=self.settings.namespace,
            worker=self.settings.rules_worker,
            partitions=list(self.partitions),
            config_version=self.trial_config.version,
            config_sha256=self.config_identity.sha256,
        )

    async def _connect(self) -> JetStreamContext:
        # Every server of a cluster (comma-separated URLs); never give up reconnecting: a
        # lost server must not end the worker.
        servers = self.settings.nats_url.split(",")
        options = self.settings.nats_broker_options()
        self._broker = NatsBroker(servers, max_reconnect_attempts=-1, **options)
        await self._broker.connect()
        js = self._broker.connection.jetstream()
        for name, subjects in (
            (self.subjects.facts_stream, self.subjects.facts_filter),
            (self.subjects.signals_stream, self.subjects.signals_filter),
        ):
            await ensure_stream(
                js, name=name, subjects=subjects, duplicate_window=DUPLICATE_WINDOW_SECONDS,
                replicas=self.settings.stream_replicas,
            )  # fmt: skip
        return js

    def _probe_durable(self) -> str:
        held = self.partitions
        partition = held[0] if held else self.settings.rules_worker % self.settings.partitions
        return rules_durable(partition, self.settings.partitions)

    async def _serve_metrics(self, js: JetStreamContext) -> None:
        """Serve /metrics and the health probes when SAFETYMON_METRICS_PORT is set.

        Worker n serves on the port plus n, so workers on one machine do not collide.
        """
        settings = self.settings
        if not settings.metrics_port:
            return
        assert self._broker is not None  # noqa: S101 - connected by _connect() before
        stream = self.subjects.facts_stream
        probe = RulesProbe(
            self.metrics, durable=self._probe_durable(), nc=self._broker.connection,
            consumer_info=lambda: js.consumer_info(stream, self._probe_durable()),
            consuming=lambda: all(u.consuming for u in self.ownership.units.values()),
        )  # fmt: skip
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
        obs = Observability(self._registry, probe.refresh, probe.ready, token or None)
        server = self._metrics_server = MetricsServer(
            obs, host=settings.metrics_host, port=settings.metrics_port + settings.rules_worker
        )
        self.metrics_port = await server.start()

    async def export_snapshot(self, directory: Path) -> SnapshotReport:
        """Write the signals and config history into `directory` (this file's only writer).

        Returns the directory and each file's path, rows and sha256.
        """
        if self.settings.partitions != 1:
            msg = "a partitioned deployment answers per partition (audit export --partitions)"
            raise TypeError(msg)
        return await self._snapshot_of(self.store, directory, partition=0)

    async def _snapshot_of(
        self, store: RulesStore, directory: Path, *, partition: int
    ) -> SnapshotReport:
        if not isinstance(store, DuckDBRulesStore):
            raise TypeError("this rules service keeps no DuckDB file: nothing to snapshot")
        files = await store.export_snapshot(directory)
        log.info(
            "audit_snapshot_written",
            partition=partition,
            rows=files[SIGNALS_FILE]["rows"],
            config_history_rows=files[CONFIG_HISTORY_FILE]["rows"],
        )
        return {"service": "rules", "partition": partition, "directory": str(directory),
                "files": files}  # fmt: skip

    async def stop(self) -> None:
        """Finish the groups in hand, flush the outboxes, close storage and the connection."""
        if self._metrics_server is not None:
            await self._metrics_server.stop()
            self._metrics_server = None
        if self._ownership_task is not None:
            self._ownership_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ownership_task
            self._ownership_task = None
        await self.ownership.close()
        if self._broker is not None:
            await self._broker.stop()
            self._broker = None
        log.info("service_stopped", service="rules")

    async def _wait_ready(self, js: JetStreamContext) -> None:
        """Wait until every claimed partition's durable consumer is pulling (or got a batch)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            units = list(self.ownership.units.values())
            for unit in units:
                for task in unit.tasks:
                    if task.done():
                        task.result()  # re-raise why it died
                        raise RuntimeError(f"{task.get_name()} ended during start")
            if self._first_batch.is_set() or all([await self._pulling(js, u) for u in units]):
                return
            await asyncio.sleep(0.02)
        raise TimeoutError("rules consumer did not become ready")

    async def _pulling(self, js: JetStreamContext, unit: PartitionUnit) -> bool:
        try:
            info = await js.consumer_info(self.subjects.facts_stream, unit.durable)
        except (nats.js.errors.NotFoundError, nats.errors.TimeoutError):
            # On a cluster a new consumer answers once its replicas elected a leader.
            return False
        return bool(info.num_waiting)
