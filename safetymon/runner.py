"""Run services in this process (`safetymon up --service X`) on the infrastructure given.

The runtime never starts a NATS or SMTP server of its own: `safetymon up` runs against the
servers the environment names (`configured_infrastructure`), and the developer tools start
embedded ones and pass them in (`tools/stack.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import nats
import structlog
from pydantic import SecretStr

from kit.jetstream import consumers_idle
from kit.nats_security import NatsClientSettings
from safetymon.nats_auth import client_env, client_settings
from schemas import NOTIFY_DURABLE, Subjects
from schemas.subjects import rules_durable

log = structlog.get_logger(__name__)
ServiceName = Literal["ingest", "rules", "notify", "console"]
#: The pipeline without its read-side screen (what a test stack needs).
PIPELINE: tuple[ServiceName, ...] = ("ingest", "rules", "notify")
#: In start order: the console acknowledges through notify's HTTP API, so it starts after it.
ALL_SERVICES: tuple[ServiceName, ...] = (*PIPELINE, "console")
#: Stops what a caller started for the services (an embedded server), after they stopped.
Closer = Callable[[], None]


class Service(Protocol):
    """What the runner needs of a service."""

    async def start(self) -> None: ...  # noqa: D102
    async def stop(self) -> None: ...  # noqa: D102


class NotConfiguredError(RuntimeError):
    """`safetymon up` was started without the servers it needs named in the environment."""


@dataclass(frozen=True)
class Infrastructure:
    """Where the services find NATS, SMTP and the routing file; their caller decides.

    Empty `passwords`: every process connects with the environment's NATS credentials. A
    caller that set up the server's per-service users (safetymon/nats_auth.py) passes their
    passwords, and each service then connects as its own user.
    """

    nats_url: str
    passwords: Mapping[str, str] = field(default_factory=dict)
    #: SMTP host and port; None leaves notify to $SAFETYMON_SMTP_HOST/_PORT.
    smtp: tuple[str, int] | None = None
    #: Where a local SMTP sink keeps the emails (None: a real server has them).
    mail_dir: Path | None = None
    #: Who is told about what; None leaves notify to $SAFETYMON_ROUTING.
    routing: Path | None = None

    def client(self, user: str) -> NatsClientSettings:
        """How a client in this process connects as `user`."""
        return (
            client_settings(user, self.passwords[user]) if self.passwords else NatsClientSettings()
        )

    def client_env(self, user: str) -> dict[str, str]:
        """The environment that makes a child process connect as `user` ({}: its own)."""
        return client_env(user, self.passwords[user]) if self.passwords else {}

    def service_env(self) -> dict[str, str]:
        """The environment that points a child `safetymon up --service X` at these servers."""
        env = {"SAFETYMON_NATS_URL": self.nats_url}
        if self.smtp is not None:
            env.update(SAFETYMON_SMTP_HOST=self.smtp[0], SAFETYMON_SMTP_PORT=str(self.smtp[1]))
        if self.routing is not None:
            env["SAFETYMON_ROUTING"] = str(self.routing)
        return env


DEV_HINT = "`make demo` (or `python -m tools up`) runs everything on embedded servers instead"


def configured_infrastructure(services: Sequence[str]) -> Infrastructure:
    """The servers the environment names for `services`.

    NATS always; notify also needs an SMTP server and a routing file. An alerting service
    must not fall back to a demo's routing or a local mail sink: the operator names them.

    Raises:
        NotConfiguredError: a variable the services need is unset (all of them named).

    """
    needed = ["SAFETYMON_NATS_URL"]
    if "notify" in services:
        needed += ["SAFETYMON_SMTP_HOST", "SAFETYMON_ROUTING"]
    missing = [name for name in needed if not os.environ.get(name)]
    if missing:
        msg = f"safetymon up runs against configured servers: set {', '.join(missing)}; {DEV_HINT}"
        raise NotConfiguredError(msg)
    routing = os.environ.get("SAFETYMON_ROUTING")
    return Infrastructure(
        nats_url=os.environ["SAFETYMON_NATS_URL"], routing=Path(routing) if routing else None
    )


@dataclass
class Stack:
    """Services running in this process and the infrastructure they use."""

    data_dir: Path
    nats_url: str
    namespace: str
    smtp: tuple[str, int]
    mail_dir: Path | None
    routing: Path | None
    services: dict[str, Service] = field(default_factory=dict)
    #: How this process's own clients connect (admin on a server with per-service users).
    client: NatsClientSettings = field(default_factory=NatsClientSettings)
    _closers: tuple[Closer, ...] = ()

    @property
    def http_port(self) -> int | None:
        """Port of the ingest HTTP API, when ingest runs here."""
        ingest = self.services.get("ingest")
        return getattr(ingest, "http_port", None)

    async def stop(self) -> None:
        """Stop the services together, then what the caller started for them.

        No service waits for another at stop: each commits what it handles and gives back
        what it has not, and they meet only on NATS, which the closers stop last. One after
        the other, their HTTP servers' shutdowns (uvicorn: ~0.15 s each) would add up.
        """
        names = list(self.services)
        results = await asyncio.gather(
            *(self.services[name].stop() for name in names), return_exceptions=True
        )
        for name, result in zip(names, results, strict=True):
            if isinstance(result, Exception):  # one failing stop must not leave others running
                log.error("service_stop_failed", service=name, exc_info=result)
            elif isinstance(result, BaseException):
                raise result
        for close in self._closers:
            close()

    async def settled(self, timeout: float = 120.0) -> None:  # noqa: ASYNC109 - a deadline is the point
        """Wait until every fact and signal has been consumed and every email sent."""
        deadline = asyncio.get_running_loop().time() + timeout
        nc = await nats.connect(self.nats_url.split(","), **self.client.nats_connect_options())
        try:
            while asyncio.get_running_loop().time() < deadline:
                if await self._quiet(nc.jetstream()):
                    return
                await asyncio.sleep(0.2)
        finally:
            await nc.close()
        msg = f"pipeline did not settle within {timeout} s"
        raise TimeoutError(msg)

    async def _quiet(self, js: nats.js.JetStreamContext) -> bool:
        subjects = Subjects(self.namespace)
        # Every partition's rules consumer (one, "rules-evaluator", when unpartitioned).
        partitions = int(os.environ.get("SAFETYMON_PARTITIONS", "1") or "1")
        checks = [(subjects.facts_stream, rules_durable(k, partitions)) for k in range(partitions)]
        checks.append((subjects.signals_stream, NOTIFY_DURABLE))
        if not await consumers_idle(js, checks):
            return False
        ingest = self.services.get("ingest")
        relay_idle = ingest is None or await _ingest_drained(ingest)
        notify = self.services.get("notify")
        unsent = 0 if notify is None else await notify.unsent_count()  # type: ignore[attr-defined]
        return relay_idle and unsent == 0


async def _ingest_drained(ingest: Service) -> bool:
    try:
        await ingest.drained(0.01)  # type: ignore[attr-defined]
    except TimeoutError:
        return False
    return True


def default_data_dir() -> Path:
    """$SAFETYMON_DATA_DIR, else ./data."""
    return Path(os.environ.get("SAFETYMON_DATA_DIR", "data"))


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data dir owner-only (0700), or make an existing one so (logged).

    It holds the DuckDB files, exports, emails with valid acknowledgement links and the
    NATS passwords: nobody but the service account may list or read it.
    """
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    if mode & 0o077:
        data_dir.chmod(0o700)
        log.warning("data_dir_mode_fixed", data_dir=str(data_dir), was=oct(mode), now="0o700")


async def start_services(
    services: Sequence[ServiceName],
    infrastructure: Infrastructure,
    *,
    data_dir: Path,
    http_port: int | None = None,
    bootstrap_token: str | None = None,
    closers: Sequence[Closer] = (),
) -> Stack:
    """Start the named services in this process on `infrastructure`.

    `bootstrap_token` overrides SAFETYMON_BOOTSTRAP_TOKEN (the demo's one-run admin token).
    `closers` run when the stack stops (or fails to start), after the services.
    """
    from services.console.config import Settings as ConsoleSettings
    from services.console.main import build_app as build_console
    from services.ingest.config import Settings as IngestSettings
    from services.ingest.main import build_app as build_ingest
    from services.notify.config import Settings as NotifySettings
    from services.notify.main import build_app as build_notify
    from services.rules.config import Settings as RulesSettings
    from services.rules.main import build_app as build_rules

    prepare_data_dir(data_dir)
    nats_url = infrastructure.nats_url

    def credentials(user: str) -> dict[str, Any]:
        """Each service's own user when the caller set them up; the environment's otherwise."""
        if not infrastructure.passwords:
            return {}
        return infrastructure.client(user).model_dump(exclude_none=True)

    ingest_settings = IngestSettings(data_dir=data_dir, nats_url=nats_url, **credentials("ingest"))
    if http_port is not None:
        ingest_settings = ingest_settings.model_copy(update={"http_port": http_port})
    if bootstrap_token is not None:
        secret = SecretStr(bootstrap_token)
        ingest_settings = ingest_settings.model_copy(update={"bootstrap_token": secret})
    notify_settings = NotifySettings(data_dir=data_dir, nats_url=nats_url, **credentials("notify"))
    notify_update: dict[str, Any] = {}
    if infrastructure.routing is not None:
        notify_update["routing"] = infrastructure.routing
    if bootstrap_token is not None:
        # The same one-run admin credential opens notify's HTTP API: the demo and the tests
        # acknowledge with it, and leave no token file behind.
        notify_update["bootstrap_token"] = SecretStr(bootstrap_token)
    if infrastructure.smtp is not None:
        notify_update.update(smtp_host=infrastructure.smtp[0], smtp_port=infrastructure.smtp[1])
    notify_settings = notify_settings.model_copy(update=notify_update)

    def console_settings(stack: Stack) -> ConsoleSettings:
        settings = ConsoleSettings(data_dir=data_dir, nats_url=nats_url, **credentials("console"))
        update: dict[str, Any] = {"notify_url": _notify_url(stack)}
        if bootstrap_token is not None:
            update["bootstrap_token"] = SecretStr(bootstrap_token)
        return settings.model_copy(update=update)

    stack = Stack(
        data_dir=data_dir,
        nats_url=nats_url,
        namespace=ingest_settings.namespace,
        smtp=(notify_settings.smtp_host, notify_settings.smtp_port),
        mail_dir=infrastructure.mail_dir,
        routing=notify_settings.routing,
        client=infrastructure.client("admin"),
        _closers=tuple(closers),
    )
    builders: dict[str, Callable[[], Service]] = {
        "ingest": lambda: build_ingest(ingest_settings),
        "rules": lambda: build_rules(
            RulesSettings(data_dir=data_dir, nats_url=nats_url, **credentials("rules"))
        ),
        "notify": lambda: build_notify(notify_settings),
        # Built after notify has started (services start in ALL_SERVICES order), so its
        # bound HTTP port is known; the same one-run admin credential opens the console.
        "console": lambda: build_console(console_settings(stack)),
    }
    try:
        for name in ALL_SERVICES:
            if name in services:
                service = builders[name]()
                await service.start()
                stack.services[name] = service
    except BaseException:
        await stack.stop()
        raise
    return stack


def _notify_url(stack: Stack) -> str | None:
    """Notify's HTTP API in this process, if notify runs here; else $SAFETYMON_NOTIFY_URL."""
    port = getattr(stack.services.get("notify"), "http_port", None)
    return f"http://127.0.0.1:{port}" if port else os.environ.get("SAFETYMON_NOTIFY_URL")


async def run_until_stopped(
    services: Sequence[ServiceName], infrastructure: Infrastructure
) -> None:
    """`safetymon up --service X`: run in this process until SIGINT/SIGTERM, then stop cleanly."""
    stack = await start_services(services, infrastructure, data_dir=default_data_dir())
    log.info(
        "safetymon_up",
        services=list(stack.services),
        nats=stack.nats_url,
        http_port=stack.http_port,
        console_url=getattr(stack.services.get("console"), "url", None),
        mail_dir=str(stack.mail_dir) if stack.mail_dir else None,
    )
    stop = stop_signalled()
    try:
        await stop.wait()
    finally:
        await stack.stop()


def stop_signalled() -> asyncio.Event:
    """An event that SIGINT or SIGTERM sets (handlers installed on the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop
