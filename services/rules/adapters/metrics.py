"""Prometheus metrics, readiness and their HTTP port for the rules service (adapters layer).

Rules serves no API, so it gets a small HTTP server of its own on SAFETYMON_METRICS_PORT
(0 = none): GET /metrics, /health/live and /health/ready, served by uvicorn inside the
service's event loop, where the readiness check can ask JetStream itself (prometheus_client's
threaded server could only show numbers copied to it). What a commit holds (signals, dead
letters, folded inputs) is counted by wrapping the store the edge commits through, so the
use-case stays free of metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram

from kit.embedded_http import EmbeddedHttpServer
from kit.metrics import Checks, ConsumerGauges, Observability, ProgressWatch, install_routes
from schemas import SignalUpdated

if TYPE_CHECKING:
    from uuid import UUID

    from nats.aio.client import Client as NatsClient
    from nats.js.api import ConsumerInfo

    from services.rules.core.engine import StateKey
    from services.rules.core.state import ParticipantState
    from services.rules.ports import Commit, ConfigActivation, ConfigRecord, StateStore

#: Group sizes run from one urgent fact (ms) to a few hundred facts and a DuckDB commit.
_GROUP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RulesMetrics:
    """The rules service's metrics, registered in its own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.consumers = ConsumerGauges(registry)
        self.group_seconds = Histogram(
            "safetymon_rules_group_seconds",
            "Time to handle one group of facts: decode, fold, commit (one transaction).",
            buckets=_GROUP_BUCKETS,
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "safetymon_rules_commit_seconds",
            "Time of the group's DuckDB commit (states, tracking, signals, dead letters).",
            buckets=_GROUP_BUCKETS,
            registry=registry,
        )
        self.facts_folded = Counter(
            "safetymon_rules_facts_folded",
            "Inputs folded into participant states (kind: fact, or a clock tick).",
            ["kind"],
            registry=registry,
        )
        self.signals = Counter(
            "safetymon_rules_signals",
            "Signals committed to the outbox, by rule, urgency and kind (raised/updated).",
            ["rule", "urgency", "kind"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "safetymon_rules_dead_letters",
            "Inputs dead-lettered, by stage (decode, evaluate).",
            ["stage"],
            registry=registry,
        )

    def committed(self, batch: Commit) -> None:
        """Count what one committed batch holds."""
        ticks = sum(1 for item in batch.folded if item.tick)
        self.facts_folded.labels("tick").inc(ticks)
        self.facts_folded.labels("fact").inc(len(batch.folded) - ticks)
        for signal in batch.signals:
            kind = signal.status if isinstance(signal, SignalUpdated) else "raised"
            payload = signal.payload
            self.signals.labels(payload.rule_id, payload.urgency.value, kind).inc()
        for letter in batch.dead_letters:
            self.dead_letters.labels(letter.stage).inc()


class MeteredStore:
    """A StateStore that counts and times each commit of the one it wraps."""

    def __init__(self, inner: StateStore, metrics: RulesMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def commit(self, batch: Commit) -> None:
        """Commit through the wrapped store; count only what was committed."""
        with self._metrics.commit_seconds.time():
            await self._inner.commit(batch)
        self._metrics.committed(batch)

    async def processed(self, consumer: str, ids: Collection[UUID]) -> frozenset[UUID]:
        """Forwarded."""
        return await self._inner.processed(consumer, ids)

    async def load(self, keys: Collection[StateKey]) -> dict[StateKey, ParticipantState]:
        """Forwarded."""
        return await self._inner.load(keys)

    async def open_clocks(self, trial_id: str) -> frozenset[StateKey]:
        """Forwarded."""
        return await self._inner.open_clocks(trial_id)

    async def positions(self, keys: Collection[StateKey]) -> dict[StateKey, int]:
        """Forwarded."""
        return await self._inner.positions(keys)

    async def max_position(self) -> int | None:
        """Forwarded."""
        return await self._inner.max_position()

    async def active_config(self) -> ConfigActivation | None:
        """Forwarded."""
        return await self._inner.active_config()

    async def config_history(self) -> list[ConfigRecord]:
        """Forwarded."""
        return await self._inner.config_history()


class RulesProbe:
    """Scrape-time consumer gauges and readiness of a started rules service."""

    def __init__(
        self,
        metrics: RulesMetrics,
        *,
        durable: str,
        nc: NatsClient,
        consumer_info: Callable[[], Awaitable[ConsumerInfo]],
        consuming: Callable[[], bool],
    ) -> None:
        self._metrics = metrics
        self._durable = durable
        self._nc = nc
        self._info = consumer_info
        self._consuming = consuming
        self._watch = ProgressWatch()

    async def refresh(self) -> None:
        """Read the durable's consumer info into the gauges."""
        self._metrics.consumers.update(self._durable, await self._info())

    async def ready(self) -> Checks:
        """NATS connected, the durable answers, the consumer runs and its ack floor moves."""
        checks: Checks = {"nats": "not connected", "consumer": "not checked"}
        if not self._nc.is_connected:
            return checks
        checks["nats"] = "ok"
        try:
            info = await asyncio.wait_for(self._info(), 2.0)
        except Exception as exc:  # the probe's answer, not an error of the probe
            checks["consumer"] = f"unreachable ({type(exc).__name__})"
            return checks
        self._metrics.consumers.update(self._durable, info)
        if not self._consuming():
            checks["consumer"] = "consumer task ended"
            return checks
        floor = info.ack_floor.stream_seq if info.ack_floor is not None else 0
        waiting = (info.num_pending or 0) + (info.num_ack_pending or 0)
        checks["consumer"] = self._watch.check(waiting=waiting, position=floor or 0)
        return checks


class MetricsServer(EmbeddedHttpServer):
    """The rules service's metrics and health port: one uvicorn task in the running loop."""

    def __init__(self, obs: Observability, *, host: str, port: int) -> None:
        api = FastAPI(title="safetymon rules", openapi_url=None, docs_url=None, redoc_url=None)
        install_routes(api, obs)
        super().__init__(api, host=host, port=port, name="rules-metrics")
