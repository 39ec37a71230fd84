"""The services on embedded servers: what `make demo`, the dev `up` and the tests' stacks run on.

The runtime runs against the servers it is given (safetymon/runner.py `Infrastructure`);
this module gives it a private nats-server and a local SMTP sink when the environment names
none, and the demo's routing file when it names no routing.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TypeVar

import structlog

from safetymon.runner import (
    PIPELINE,
    Infrastructure,
    ServiceName,
    Stack,
    default_data_dir,
    prepare_data_dir,
    start_services,
)
from schemas.subjects import DEFAULT_NAMESPACE
from tools.embedded import EmbeddedNats, SmtpSink

log = structlog.get_logger(__name__)
T = TypeVar("T")


def demo_routing() -> Path:
    """The demo trial's routing file (example.org addresses), shipped with the tools."""
    return Path(str(resources.files("tools.demo").joinpath("routing.toml")))


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


@dataclass
class Embedded:
    """The infrastructure to hand to the runtime, and what was started for it."""

    infrastructure: Infrastructure
    nats: EmbeddedNats | None
    sink: SmtpSink | None

    def stop(self) -> None:
        """Stop the sink, then the server (whichever were started)."""
        if self.sink is not None:
            self.sink.stop()
        if self.nats is not None:
            self.nats.stop()


def start_embedded(
    data_dir: Path, *, services: Sequence[str], namespace: str = DEFAULT_NAMESPACE
) -> Embedded:
    """What `services` need, embedded where the environment names nothing.

    The routing is $SAFETYMON_ROUTING, else the demo's file.
    """
    embedded_nats, nats_url, sink = start_infrastructure(
        data_dir, smtp="notify" in services, namespace=namespace
    )
    routing = Path(os.environ.get("SAFETYMON_ROUTING") or demo_routing())
    infrastructure = Infrastructure(
        nats_url=nats_url,
        passwords=embedded_nats.passwords if embedded_nats is not None else {},
        smtp=(sink.host, sink.port) if sink is not None else None,
        mail_dir=sink.mail_dir if sink is not None else None,
        routing=routing,
    )
    return Embedded(infrastructure, embedded_nats, sink)


async def start_stack(
    services: Sequence[ServiceName] = PIPELINE,
    *,
    data_dir: Path | None = None,
    http_port: int | None = None,
    bootstrap_token: str | None = None,
) -> Stack:
    """Start the named services in this process; NATS and SMTP are embedded when not configured.

    `bootstrap_token` overrides SAFETYMON_BOOTSTRAP_TOKEN (the demo's one-run admin token).
    """
    data = data_dir or default_data_dir()
    return await on_embedded(
        data,
        services,
        lambda infrastructure, stop_embedded: start_services(
            services,
            infrastructure,
            data_dir=data,
            http_port=http_port,
            bootstrap_token=bootstrap_token,
            closers=(stop_embedded,),
        ),
    )


async def on_embedded(
    data_dir: Path,
    services: Sequence[str],
    start: Callable[[Infrastructure, Callable[[], None]], Awaitable[T]],
) -> T:
    """Start what `services` need embedded, then `start(infrastructure, stop_embedded)`.

    What `start` returns owns the embedded servers (it gets their stop as a closer); a start
    that fails stops them here.
    """
    from services.ingest.config import Settings as IngestSettings

    embedded = start_embedded(data_dir, services=services, namespace=IngestSettings().namespace)
    try:
        return await start(embedded.infrastructure, embedded.stop)
    except BaseException:
        embedded.stop()  # idempotent: also when the failed start already ran it
        raise
