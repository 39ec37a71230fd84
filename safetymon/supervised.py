"""The services as supervised child processes on the infrastructure given (`up`, the demo).

`start_supervised` runs `safetymon up --service X` per service under a `Supervisor`, each
pointed at the servers of its `Infrastructure`: the environment's for `safetymon up`, the
embedded ones the developer tools start for the demo. Whatever the demo asks of the
services it asks across processes: ingest over HTTP, notify over NATS request/reply
(`RemoteNotify`), the consumers' backlog from JetStream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import nats
import structlog
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from kit.auth import bearer_headers
from kit.jetstream import consumers_idle
from kit.nats_security import NatsClientSettings
from safetymon.remote_notify import RemoteNotify
from safetymon.runner import (
    ALL_SERVICES,
    Closer,
    Infrastructure,
    default_data_dir,
    prepare_data_dir,
    stop_signalled,
)
from safetymon.supervisor import ChildSpec, Supervisor, child_names
from schemas import NOTIFY_DURABLE, Subjects
from schemas.subjects import rules_durable

log = structlog.get_logger(__name__)
_POLL_S = 0.2
_NATS_ERRORS = (nats.errors.Error, TimeoutError)


@dataclass
class SupervisedStack:
    """The supervised services and the infrastructure they use."""

    data_dir: Path
    nats_url: str
    namespace: str
    smtp: tuple[str, int]
    mail_dir: Path | None
    http_port: int
    supervisor: Supervisor
    token: str | None = None
    #: The console's port (0: not supervised here).
    console_port: int = 0
    #: The services supervised, and the partitions the rules workers share.
    services: tuple[str, ...] = ALL_SERVICES
    partitions: int = 1
    #: How this process's own clients connect (admin on a server with per-service users).
    client: NatsClientSettings = field(default_factory=NatsClientSettings)
    _closers: tuple[Closer, ...] = ()
    _nc: NatsClient | None = None

    @property
    def notify(self) -> RemoteNotify:
        """The notify service over NATS (after `wait_ready`)."""
        if self._nc is None:
            msg = "not connected: call wait_ready() first"
            raise RuntimeError(msg)
        return RemoteNotify(self._nc, self.namespace, data_dir=self.data_dir)

    async def wait_ready(self, timeout: float = 120.0) -> None:  # noqa: ASYNC109 - a deadline is the point
        """Wait until ingest answers HTTP, rules is bound and notify answers requests."""
        if self._nc is None:
            options = self.client.nats_connect_options()
            self._nc = await nats.connect(self.nats_url.split(","), **options)
        deadline = asyncio.get_running_loop().time() + timeout
        async with httpx.AsyncClient(timeout=2.0) as http:
            while not await self._ready(self._nc.jetstream(), http):
                if self.supervisor.gave_up:
                    msg = "a service kept failing at start: see its [name] lines above"
                    raise RuntimeError(msg)
                if asyncio.get_running_loop().time() > deadline:
                    msg = f"services not ready within {timeout} s"
                    raise TimeoutError(msg)
                await asyncio.sleep(_POLL_S)

    @property
    def console_url(self) -> str | None:
        """Where the console serves its pages, when it runs."""
        return f"http://127.0.0.1:{self.console_port}" if self.console_port else None

    @property
    def rules_durables(self) -> tuple[str, ...]:
        """The rules consumers on the facts stream, one per partition."""
        return tuple(rules_durable(k, self.partitions) for k in range(self.partitions))

    async def _ready(self, js: JetStreamContext, http: httpx.AsyncClient) -> bool:
        facts = Subjects(self.namespace).facts_stream
        try:
            if "rules" in self.services:
                for durable in self.rules_durables:
                    await js.consumer_info(facts, durable)
            if "notify" in self.services:
                await self.notify.unsent_count()  # answers once notify's consumers are bound
            if self.console_url is not None:
                page = await http.get(f"{self.console_url}/signin")
                if page.status_code != httpx.codes.OK:
                    return False
            if "ingest" not in self.services:
                return True
            response = await http.get(f"http://127.0.0.1:{self.http_port}/health")
        except (httpx.HTTPError, *_NATS_ERRORS):
            return False
        return response.status_code == httpx.codes.OK

    async def settled(self, timeout: float = 120.0) -> None:  # noqa: ASYNC109 - a deadline is the point
        """Wait until every fact and signal has been consumed and every email sent.

        Upstream first: ingest's relay has published its whole log, then the rules and
        notify consumers have nothing pending, then notify has nothing unsent.
        """
        if self._nc is None or self.token is None:
            msg = "settled() needs wait_ready() and the bootstrap token (reads the log head)"
            raise RuntimeError(msg)
        deadline = asyncio.get_running_loop().time() + timeout
        headers = bearer_headers(self.token)
        base = f"http://127.0.0.1:{self.http_port}"
        async with httpx.AsyncClient(base_url=base, timeout=30, headers=headers) as http:
            while asyncio.get_running_loop().time() < deadline:
                if await self._quiet(self._nc.jetstream(), http):
                    return
                await asyncio.sleep(_POLL_S)
        msg = f"pipeline did not settle within {timeout} s"
        raise TimeoutError(msg)

    async def _quiet(self, js: JetStreamContext, http: httpx.AsyncClient) -> bool:
        subjects = Subjects(self.namespace)
        if not await _relay_caught_up(http):
            return False
        checks = [(subjects.facts_stream, durable) for durable in self.rules_durables]
        checks.append((subjects.signals_stream, NOTIFY_DURABLE))
        if not await consumers_idle(js, checks):
            return False
        return await self.notify.unsent_count() == 0

    async def stop(self) -> None:
        """Stop the children (SIGTERM, then SIGKILL), then what the caller started for them."""
        try:
            if self._nc is not None:
                nc, self._nc = self._nc, None
                with contextlib.suppress(*_NATS_ERRORS):  # the server may be gone already
                    await nc.close()
            await self.supervisor.stop()
        finally:
            for close in self._closers:
                close()


async def _relay_caught_up(http: httpx.AsyncClient) -> bool:
    """Whether JetStream has confirmed ingest's whole log (relay backlog, across processes).

    GET /v1/log/head says how far the log is and how far the relay has had it confirmed.
    (The relay may publish an urgent fact ahead of a backlog, so the stream's last message
    does not tell.)
    """
    response = await http.get("/v1/log/head")
    response.raise_for_status()
    body = response.json()
    return int(body.get("published", 0)) >= int(body["seq"])


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_supervised(  # noqa: PLR0913 - what the services run on, and how
    infrastructure: Infrastructure,
    *,
    data_dir: Path | None = None,
    http_port: int | None = None,
    bootstrap_token: str | None = None,
    child_env: dict[str, str] | None = None,
    services: tuple[str, ...] = ALL_SERVICES,
    closers: Sequence[Closer] = (),
) -> SupervisedStack:
    """Start each service as a child process on `infrastructure`.

    `http_port` 0 picks a free port now (a child's own pick would be unknown here); None
    leaves it to $SAFETYMON_HTTP_PORT. `child_env` adds to the children's environment.
    The rules run as $SAFETYMON_RULES_WORKERS worker processes (`rules-0`, `rules-1`, ...).
    `closers` run when the stack stops (or fails to start), after the children.
    """
    from services.ingest.config import Settings as IngestSettings
    from services.rules.config import Settings as RulesSettings

    data_dir = data_dir or default_data_dir()
    prepare_data_dir(data_dir)
    settings = IngestSettings()
    rules = RulesSettings()
    port = free_port() if http_port == 0 else (http_port or settings.http_port)
    env = {
        **os.environ,
        **(child_env or {}),
        **infrastructure.service_env(),
        "SAFETYMON_DATA_DIR": str(data_dir),
        "SAFETYMON_HTTP_PORT": str(port),
    }
    console_port = 0
    if "console" in services:
        # The console acknowledges through notify's HTTP API and notify's emails link to the
        # console: both ports are fixed here (from the environment, else free ones now).
        notify_port = int(env.get("SAFETYMON_NOTIFY_HTTP_PORT") or 0) or free_port()
        console_port = int(env.get("SAFETYMON_CONSOLE_HTTP_PORT") or 0) or free_port()
        env.update(
            SAFETYMON_NOTIFY_HTTP_PORT=str(notify_port),
            SAFETYMON_NOTIFY_URL=env.get("SAFETYMON_NOTIFY_URL")
            or f"http://127.0.0.1:{notify_port}",
            SAFETYMON_CONSOLE_HTTP_PORT=str(console_port),
            SAFETYMON_CONSOLE_URL=env.get("SAFETYMON_CONSOLE_URL")
            or f"http://127.0.0.1:{console_port}",
        )
    if bootstrap_token is not None:
        env["SAFETYMON_BOOTSTRAP_TOKEN"] = bootstrap_token
    # With per-service users each child connects as its own (an operator's server keeps the
    # credentials of the environment).
    children = [
        ChildSpec(name, argv, {**env, **infrastructure.client_env(name.partition("-")[0])})
        for name, argv in child_names(services, rules_workers=rules.rules_workers)
    ]
    smtp = infrastructure.smtp or (
        env.get("SAFETYMON_SMTP_HOST", ""),
        int(env.get("SAFETYMON_SMTP_PORT") or 0),
    )
    stack = SupervisedStack(
        data_dir=data_dir, nats_url=infrastructure.nats_url, namespace=settings.namespace,
        smtp=smtp, mail_dir=infrastructure.mail_dir, http_port=port, console_port=console_port,
        supervisor=Supervisor(children), token=bootstrap_token, _closers=tuple(closers),
        services=services, partitions=rules.partitions, client=infrastructure.client("admin"),
    )  # fmt: skip
    try:
        await stack.supervisor.start()
    except BaseException:
        await stack.stop()
        raise
    return stack


async def run_supervised(
    infrastructure: Infrastructure,
    *,
    child_env: dict[str, str] | None = None,
    services: tuple[str, ...] = ALL_SERVICES,
    closers: Sequence[Closer] = (),
) -> int:
    """`safetymon up`: supervise the services until SIGINT/SIGTERM; 1 when one was given up."""
    stop = stop_signalled()  # first: a Ctrl-C during start still stops what started
    stack = await start_supervised(
        infrastructure, child_env=child_env, services=services, closers=closers
    )
    log.info(
        "safetymon_up", services=list(services), pids=dict(stack.supervisor.pids),
        nats=stack.nats_url, http_port=stack.http_port, console_url=stack.console_url,
        mail_dir=str(stack.mail_dir) if stack.mail_dir else None,
    )  # fmt: skip
    stopped = asyncio.create_task(stop.wait())
    failed = asyncio.create_task(stack.supervisor.wait_failed())
    try:
        await asyncio.wait({stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gave_up = failed.done()
        stopped.cancel()
        failed.cancel()
        await stack.stop()
    log.info("safetymon_stopped", gave_up=gave_up)
    return 1 if gave_up else 0
