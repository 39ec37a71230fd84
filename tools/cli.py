"""Developer commands: the demo and the services on embedded servers (`python -m tools`).

`safetymon` is what an operator runs against configured NATS and SMTP; these commands start
a private nats-server and a local SMTP sink first (unless the environment names servers),
then the same runtime with those servers filled in.
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer
from rich.console import Console

from kit.logging import configure_logging
from safetymon.cli import ServiceChoice, child_log_env, log_format
from safetymon.runner import ALL_SERVICES, ServiceName

app = typer.Typer(
    help="Developer tools: the demo, and the services on embedded NATS and SMTP.",
    no_args_is_help=True,
)
console = Console(stderr=True)


@app.callback()
def _private_files() -> None:
    """Developer tools: the demo, and the services on embedded NATS and SMTP."""
    # The data dir gets DuckDB files, NATS passwords and .eml files with valid ack links, as
    # under `safetymon`: the service account's only, and the children inherit the mask.
    os.umask(0o077)


@app.command()
def demo(
    participants: Annotated[int, typer.Option(min=4, help="Participants in the feed.")] = 120,
    seed: Annotated[int, typer.Option(help="Seed of the deterministic feed.")] = 1724398,
    keep_running: Annotated[
        bool, typer.Option(help="Leave the services running after the feed.")
    ] = False,
) -> None:
    """Run the demo trial feed through all services and print what was flagged."""
    from tools.demo_run import run_demo

    configure_logging(log_format("console"), level="WARNING")
    asyncio.run(
        run_demo(participants=participants, seed=seed, keep_running=keep_running, console=console)
    )


@app.command()
def up(
    service: Annotated[
        ServiceChoice | None, typer.Option(help="Run only this service (default: all four).")
    ] = None,
) -> None:
    """Run the services until interrupted, as `safetymon up` does, on embedded servers.

    A private nats-server (per-service users) unless $SAFETYMON_NATS_URL is set, an SMTP sink
    writing data/mail/*.eml unless $SAFETYMON_SMTP_HOST is, and the demo's routing file unless
    $SAFETYMON_ROUTING is.
    """
    fmt = log_format("auto")
    configure_logging(fmt, level=os.environ.get("SAFETYMON_LOG_LEVEL", "INFO"))
    chosen: tuple[ServiceName, ...] = ALL_SERVICES if service is None else (service.value,)
    raise typer.Exit(code=asyncio.run(_up(chosen, child_env=child_log_env(fmt))))


async def _up(services: tuple[ServiceName, ...], *, child_env: dict[str, str]) -> int:
    from safetymon.runner import default_data_dir
    from safetymon.supervised import run_supervised
    from tools.stack import on_embedded

    return await on_embedded(
        default_data_dir(),
        services,
        lambda infrastructure, stop_embedded: run_supervised(
            infrastructure, child_env=child_env, services=services, closers=(stop_embedded,)
        ),
    )
