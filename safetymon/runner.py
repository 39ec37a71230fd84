"""Run services in this process (`up --service X`, the tests' `start_stack`), and embedded infra."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

import nats
import structlog
from pydantic import SecretStr

from kit.jetstream import consumers_idle
from kit.nats_security import NatsClientSettings
from schemas import NOTIFY_DURABLE, Subjects
from schemas.subjects import DEFAULT_NAMESPACE, rules_durable
from tools.embedded import EmbeddedNats, SmtpSink

log = structlog.get_logger(__name__)
ServiceName = Literal["ingest", "rules", "notify", "console"]
#: The pipeline without its read-side screen (what a test stack needs).
PIPELINE: tuple[ServiceName, ...] = ("ingest", "rules", "notify")
#: In start order: the console acknowledges through notify's HTTP API, so it starts after it.
ALL_SERVICES: tuple[ServiceName, ...] = (*PIPELINE, "console")


class Service(Protocol):
    """What the runner needs of a service."""

    async def start(self) -> None: ...  # noqa: D102
    async def stop(self) -> None: ...  # noqa: D102


def default_routing() -> Path:
    """The demo routing file shipped with the package."""
    return Path(str(resources.files("tools.demo").joinpath("routing.toml")))


@dataclass
class Stack:
    """Running services and the embedded infrastructure they use."""

    data_dir: Path
    nats_url: str
    namespace: str
    smtp: tuple[str, int]
    mail_dir: Path | None
    routing: Path
    services: dict[str, Service] = field(default_factory=dict)
    #: How this process's own clients connect (admin on the embedded server).
    client: NatsClientSettings = field(default_factory=NatsClientSettings)
    _nats: EmbeddedNats | None = None
    _sink: SmtpSink | None = None

    @property
    def http_port(self) -> int | None:
        """Port of the ingest HTTP API, when ingest runs here."""
        ingest = self.services.get("ingest")
        return getattr(ingest, "http_port", None)

    async def stop(self) -> None:
        """Stop services in reverse order, then the embedded infrastructure."""
        for name in reversed(list(self.services)):
            try:
                await self.services[name].stop()
            except Exception:  # one failing stop must not leave the others running
                log.exception("service_stop_failed", service=name)
        if self._sink is not None:
            self._sink.stop()
        if self._nats is not None:
            self._nats.stop()

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


def start_infrastructure(
    data_dir: Path, *, smtp: bool, namespace: str = DEFAULT_NAMESPACE
) -> tuple[EmbeddedNats | None, str, SmtpSink | None]:
    """Start a private nats-server and an SMTP sink unless configured; return them and the URL.

    NATS is embedded unless $SAFETYMON_NATS_URL is set, and admits only the per-service users
    of `namespace` (safetymon/nats_auth.py); the sink is started when `smtp` and
    $SAFETYMON_SMTP_HOST is unset. What was not started is None.
    """
    prepare_data_dir(data_dir)
    embedded_nats = None
    nats_url = os.environ.get("SAFETYMON_NATS_URL")
    if not nats_url:
        embedded_nats = EmbeddedNats(data_dir, namespace=namespace)
        embedded_nats.start()
        nats_url = embedded_nats.url
        log.info("embedded_nats_started", url=nats_url, store=str(embedded_nats.store_dir))
    sink = None
    if smtp and not os.environ.get("SAFETYMON_SMTP_HOST"):
        sink = SmtpSink(data_dir / "mail")
        try:
            sink.start()
        except BaseException:
            if embedded_nats is not None:
                embedded_nats.stop()
            raise
        log.info("smtp_sink_started", port=sink.port, mail_dir=str(sink.mail_dir))
    return embedded_nats, nats_url, sink


async def start_stack(
    services: Sequence[ServiceName] = PIPELINE,
    *,
    data_dir: Path | None = None,
    http_port: int | None = None,
    bootstrap_token: str | None = None,
) -> Stack:
    """Start the named services; NATS and SMTP are embedded when not configured.

    `bootstrap_token` overrides SAFETYMON_BOOTSTRAP_TOKEN (the demo's one-run admin token).
    """
    from services.console.config import Settings as ConsoleSettings
    from services.console.main import build_service as build_console
    from services.ingest.config import Settings as IngestSettings
    from services.ingest.main import build_service as build_ingest
    from services.notify.config import Settings as NotifySettings
    from services.notify.main import build_service as build_notify
    from services.rules.config import Settings as RulesSettings
    from services.rules.main import build_service as build_rules

    data_dir = data_dir or default_data_dir()
    namespace = IngestSettings().namespace
    embedded_nats, nats_url, sink = start_infrastructure(
        data_dir, smtp="notify" in services, namespace=namespace
    )

    def credentials(user: str) -> dict[str, Any]:
        """Each service's own user on the embedded server; the environment's otherwise."""
        if embedded_nats is None:
            return {}
        return embedded_nats.client_settings(user).model_dump(exclude_none=True)

    routing = Path(os.environ.get("SAFETYMON_ROUTING") or default_routing())
    ingest_settings = IngestSettings(data_dir=data_dir, nats_url=nats_url, **credentials("ingest"))
    if http_port is not None:
        ingest_settings = ingest_settings.model_copy(update={"http_port": http_port})
    if bootstrap_token is not None:
        secret = SecretStr(bootstrap_token)
        ingest_settings = ingest_settings.model_copy(update={"bootstrap_token": secret})
    notify_settings = NotifySettings(
        data_dir=data_dir, nats_url=nats_url, routing=routing, **credentials("notify")
    )
    if bootstrap_token is not None:
        # The same one-run admin credential opens notify's HTTP API (issue 8).
        secret = SecretStr(bootstrap_token)
        notify_settings = notify_settings.model_copy(update={"bootstrap_token": secret})
    if sink is not None:
        notify_settings = notify_settings.model_copy(
            update={"smtp_host": sink.host, "smtp_port": sink.port}
        )

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
        smtp=(sink.host, sink.port) if sink else ("", 0),
        mail_dir=sink.mail_dir if sink else None,
        routing=routing,
        client=embedded_nats.client_settings("admin") if embedded_nats else NatsClientSettings(),
        _nats=embedded_nats,
        _sink=sink,
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


async def run_until_stopped(services: Sequence[ServiceName]) -> None:
    """`safetymon up --service X`: run in this process until SIGINT/SIGTERM, then stop cleanly."""
    stack = await start_stack(services)
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
