"""Prometheus metrics and health probes shared by the services.

Each service keeps its own `CollectorRegistry`, not prometheus_client's global one: the
in-process stack (`safetymon up`, the tests) runs all three services, and sometimes two
instances of one, in one process, and each endpoint must show its own service's numbers.

Labels are small fixed sets (reasons, rule ids, urgencies, durables, failure kinds), never
a participant, site, signal or event id: those are unbounded, and a participant id is PHI.

Access: `/metrics` is guarded by `scrape_guard` (a scrape-only bearer token, or an `auditor`
or `admin` token of the token file): the counts it exposes (signals by rule, rejections)
are trial operations data, not for the sites that may reach the ingest port. The health
probes answer anyone, as a load balancer or kubelet sends no token; they carry no counts
beyond a backlog size.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import structlog
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from kit.auth import Role, TokenStore, TokenStoreError

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.js.api import ConsumerInfo

log = structlog.get_logger(__name__)

#: Alert latency buckets (s): tens of ms when idle, up to minutes behind a backlog or an SMTP
#: outage; past 600 s only the count matters (and the oldest unacknowledged U0 gauge).
LATENCY_BUCKETS: Final = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip
#: Work waiting with no progress for this long makes a service not ready.
STALL_SECONDS: Final = 120.0
#: Longest a probe or a scrape waits on NATS or DuckDB before answering without it.
PROBE_TIMEOUT_S: Final = 2.0
OK: Final = "ok"
_SCRAPE_ROLES: Final = frozenset({Role.auditor, Role.admin})

#: Check name -> "ok" or what is wrong (a short operator-facing phrase, no data).
Checks = dict[str, str]


def new_registry() -> CollectorRegistry:
    """A service's own registry, with the process, platform and GC collectors."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class ConsumerGauges:
    """A JetStream durable's backlog as gauges, read from its consumer info."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.pending = Gauge(
            "safetymon_consumer_pending",
            "Messages on the stream not yet delivered to the durable consumer.",
            ["durable"],
            registry=registry,
        )
        self.ack_pending = Gauge(
            "safetymon_consumer_ack_pending",
            "Messages delivered to the durable consumer and not yet acknowledged.",
            ["durable"],
            registry=registry,
        )
        self.redelivered = Gauge(
            "safetymon_consumer_redelivered",
            "Messages being redelivered to the durable consumer (delivered more than once).",
            ["durable"],
            registry=registry,
        )
        self.ack_floor = Gauge(
            "safetymon_consumer_ack_floor_stream_seq",
            "Stream sequence below which the durable consumer has acknowledged everything.",
            ["durable"],
            registry=registry,
        )

    def update(self, durable: str, info: ConsumerInfo) -> None:
        """Set the gauges from a fresh `consumer_info`."""
        self.pending.labels(durable).set(info.num_pending or 0)
        self.ack_pending.labels(durable).set(info.num_ack_pending or 0)
        self.redelivered.labels(durable).set(info.num_redelivered or 0)
        floor = info.ack_floor.stream_seq if info.ack_floor is not None else 0
        self.ack_floor.labels(durable).set(floor or 0)


class ProgressWatch:
    """Tell a stalled pipeline from a busy one: work waits and its position does not move.

    Fed by the probes themselves (no task of its own), so "no progress for N s" is measured
    between probes: the clock restarts whenever the position moved, nothing waited, or
    work was first seen waiting, so a rare probe never calls fresh work stalled.
    """

    def __init__(
        self, stall_after: float = STALL_SECONDS, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stall_after = stall_after
        self._clock = clock
        self._position: int | None = None
        self._was_waiting = False
        self._since = clock()

    def check(self, *, waiting: int, position: int) -> str:
        """Return "ok", or "stalled ..." when `waiting` > 0 and `position` stood still too long."""
        now = self._clock()
        if waiting <= 0 or position != self._position or not self._was_waiting:
            self._since = now
        self._position, self._was_waiting = position, waiting > 0
        still = now - self._since
        if waiting > 0 and still > self._stall_after:
            return f"stalled: {waiting} waiting, no progress for {int(still)} s"
        return OK


async def nats_checks(
    nc: NatsClient | None, probe: Callable[[], Awaitable[object]], *, what: str = "jetstream"
) -> Checks:
    """`nats`: the connection is up; `what`: the JetStream call `probe` answers in time."""
    if nc is None or not nc.is_connected:
        return {"nats": "not connected", what: "not checked"}
    try:
        await asyncio.wait_for(probe(), PROBE_TIMEOUT_S)
    except Exception as exc:  # reported as the probe's answer, never raised to the caller
        return {"nats": OK, what: f"unreachable ({type(exc).__name__})"}
    return {"nats": OK, what: OK}


@dataclass(frozen=True, slots=True)
class Observability:
    """What the /metrics and /health/* routes of one service read."""

    registry: CollectorRegistry
    #: Sets the gauges that are read at scrape time (backlogs, heads, oldest alert).
    refresh: Callable[[], Awaitable[None]]
    #: The readiness checks (see `Checks`); ready when every one is "ok".
    ready: Callable[[], Awaitable[Checks]]
    #: Scrape-only bearer token (SAFETYMON_METRICS_TOKEN); grants /metrics and nothing else.
    scrape_token: str | None = None


def scrape_guard(token: str | None, tokens: TokenStore | None) -> Callable[[Request], None]:
    """A FastAPI dependency letting a scraper in: the scrape token, or an auditor/admin token.

    With neither a scrape token nor a token file (the rules metrics port left without
    SAFETYMON_METRICS_TOKEN) the endpoint is open: it then binds to loopback by default.
    """

    def require(request: Request) -> None:
        if token is None and tokens is None:
            return
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise HTTPException(401, "a bearer token is required", {"WWW-Authenticate": "Bearer"})
        if token is not None and hmac.compare_digest(presented.encode(), token.encode()):
            return
        principal = None
        if tokens is not None:
            try:
                principal = tokens.authenticate(presented)
            except TokenStoreError as exc:
                raise HTTPException(503, "the token store cannot be read") from exc
        if principal is None:
            log.warning("metrics_auth_refused", path=request.url.path)
            raise HTTPException(401, "the bearer token is unknown or revoked")
        if principal.role not in _SCRAPE_ROLES:
            raise HTTPException(403, "metrics need the scrape token or an auditor/admin token")

    return require


def install_routes(api: FastAPI, obs: Observability, *, tokens: TokenStore | None = None) -> None:
    """Add GET /metrics (guarded), /health/live and /health/ready to `api`."""
    guard = scrape_guard(obs.scrape_token, tokens)

    @api.get("/metrics", include_in_schema=False, dependencies=[Depends(guard)])
    async def metrics() -> Response:
        await _refresh(obs.refresh)
        return Response(generate_latest(obs.registry), media_type=CONTENT_TYPE_LATEST)

    @api.get("/health/live", include_in_schema=False)
    async def live() -> dict[str, str]:
        # Answering at all is the point: the event loop runs and the server accepts.
        return {"status": "alive"}

    @api.get("/health/ready", include_in_schema=False)
    async def ready() -> JSONResponse:
        checks = await readiness(obs.ready)
        ok = all(value == OK for value in checks.values())
        body = {"status": "ready" if ok else "not_ready", "checks": checks}
        return JSONResponse(status_code=200 if ok else 503, content=body)


async def readiness(ready: Callable[[], Awaitable[Checks]]) -> Checks:
    """Run the readiness checks with a deadline; a failure is an answer, not an error."""
    try:
        return await asyncio.wait_for(ready(), PROBE_TIMEOUT_S * 2)
    except Exception as exc:  # the probe answers 503 with the reason; it never crashes
        return {"checks": f"failed ({type(exc).__name__})"}


async def _refresh(refresh: Callable[[], Awaitable[None]]) -> None:
    try:
        await asyncio.wait_for(refresh(), PROBE_TIMEOUT_S)
    except Exception as exc:  # the scrape goes on with the last values; the error is logged
        log.warning("metrics_refresh_failed", error=type(exc).__name__)
