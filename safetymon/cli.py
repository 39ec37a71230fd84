"""The `safetymon` command: what an operator runs against configured infrastructure.

Run the services, ingest and import files, audit, report, tokens, acknowledgements, the
calculators, the rule catalogue, schemas and exports. The demo and the embedded servers are
developer tools with their own entry (`python -m tools`, tools/cli.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from kit.logging import configure_logging
from safetymon.audit_cli import audit_app
from safetymon.calc_cli import calc_app
from safetymon.export_sdtm import export_app
from safetymon.importers.formats import SourceFormat
from safetymon.notify_cli import register as register_notify_commands
from safetymon.report_cli import report_app
from safetymon.runner import (
    ALL_SERVICES,
    NotConfiguredError,
    ServiceName,
    configured_infrastructure,
)
from safetymon.tokens_cli import tokens_app

app = typer.Typer(help="Safety monitoring and alerting for clinical trials.", no_args_is_help=True)
schema_app = typer.Typer(help="Event contracts.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
rules_app = typer.Typer(help="The rule catalogue.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.add_typer(audit_app, name="audit")
app.add_typer(calc_app, name="calc")
app.add_typer(export_app, name="export")  # SDTM domains back out, for the importers' round trip
register_notify_commands(app)  # ack, notifications, routes: top-level, as people type them
app.add_typer(tokens_app, name="tokens")
app.add_typer(report_app, name="report")
console = Console(stderr=True)
LogFormat = Literal["json", "console", "auto"]


@app.callback()
def _private_files() -> None:
    """Safety monitoring and alerting for clinical trials."""
    # Before any command writes: DuckDB files and WALs, exports, bundles, reports and .eml
    # files (valid ack links) are for the service account only; the supervisor's children
    # inherit the mask.
    os.umask(0o077)


def log_format(default: LogFormat) -> LogFormat:
    """$SAFETYMON_LOG_FORMAT, else `default` (the developer tools read it the same way)."""
    value = os.environ.get("SAFETYMON_LOG_FORMAT", default)
    if value not in ("json", "console", "auto"):
        msg = f"SAFETYMON_LOG_FORMAT must be json, console or auto, not {value!r}"
        raise typer.BadParameter(msg)
    return value  # type: ignore[return-value] # narrowed by the membership test above


class ServiceChoice(StrEnum):
    """Services `up` can run alone."""

    ingest = "ingest"
    rules = "rules"
    notify = "notify"
    console = "console"


@app.command()
def up(
    service: Annotated[
        ServiceChoice | None, typer.Option(help="Run only this service (default: all four).")
    ] = None,
    worker: Annotated[
        int | None,
        typer.Option(min=0, help="With --service rules: run this one rules worker (its id)."),
    ] = None,
) -> None:
    """Run the services until interrupted, on the NATS (and SMTP) the environment names.

    Alone (`--service X`) a service runs in this process; all four run as child processes
    of a supervisor that restarts a dead one and prefixes its lines with `[X]`. The rules
    run as $SAFETYMON_RULES_WORKERS worker processes (`[rules-0]`, ...) sharing the
    $SAFETYMON_PARTITIONS partitions; `--service rules` alone supervises them too, and
    `--service rules --worker N` is one worker. Needs $SAFETYMON_NATS_URL, and for notify
    $SAFETYMON_SMTP_HOST and $SAFETYMON_ROUTING; `make demo` runs everything on embedded servers.
    """
    fmt = log_format("auto")
    configure_logging(fmt, level=os.environ.get("SAFETYMON_LOG_LEVEL", "INFO"))
    if worker is not None:
        if service is not ServiceChoice.rules:
            raise typer.BadParameter("--worker goes with --service rules")
        os.environ["SAFETYMON_RULES_WORKER"] = str(worker)
    workers = int(os.environ.get("SAFETYMON_RULES_WORKERS", "1") or "1")
    chosen: tuple[ServiceName, ...] = ALL_SERVICES if service is None else (service.value,)
    try:
        infrastructure = configured_infrastructure(chosen)
    except NotConfiguredError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(code=2) from exc
    if service is not None and (
        worker is not None or service is not ServiceChoice.rules or workers <= 1
    ):
        from safetymon.runner import run_until_stopped

        asyncio.run(run_until_stopped(chosen, infrastructure))
        return
    from safetymon.supervised import run_supervised

    code = asyncio.run(
        run_supervised(infrastructure, child_env=child_log_env(fmt), services=chosen)
    )
    raise typer.Exit(code=code)


def child_log_env(fmt: LogFormat) -> dict[str, str]:
    """The children write to pipes, where "auto" would mean JSON: they follow this terminal."""
    child_format = fmt if fmt != "auto" else ("console" if sys.stderr.isatty() else "json")
    return {"SAFETYMON_LOG_FORMAT": child_format}


@app.command()
def ingest(  # noqa: PLR0913 - one parameter per command-line option
    files: Annotated[
        list[Path],
        typer.Argument(help="JSON Lines files; or SDTM/FHIR folders or files (see --format)."),
    ],
    *,
    url: Annotated[
        str | None,
        typer.Option(help="Ingest API base URL (default: http://127.0.0.1:$SAFETYMON_HTTP_PORT)."),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Events per request.")] = 1000,
    source_format: Annotated[
        SourceFormat, typer.Option("--format", help="What the files are.")
    ] = SourceFormat.jsonl,
    mapping: Annotated[
        Path | None,
        typer.Option(help="sdtm: study mapping (arms, treatments); csv: column mapping (TOML)."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="SAFETYMON_TOKEN",
            help="Bearer token; prefer $SAFETYMON_TOKEN, since `ps` shows arguments.",
            show_envvar=True,
        ),
    ] = None,
    reasons: Annotated[
        Path | None,
        typer.Option(help="Reasons file (JSON Lines); default <format>-import-reasons.jsonl."),
    ] = None,
) -> None:
    """Send JSON Lines, SDTM, FHIR or site CSV files to the running ingest service; summarise."""
    from safetymon.ingest_files import ingest_files

    base = url or f"http://127.0.0.1:{os.environ.get('SAFETYMON_HTTP_PORT', '8080')}"
    if source_format is not SourceFormat.jsonl:
        from safetymon.importers.cli_run import import_files

        summary = import_files(
            source_format,
            files,
            mapping=mapping,
            base_url=base,
            batch=batch,
            token=token,
            reasons=reasons,
            console=console,
        )
    else:
        summary = ingest_files(files, base_url=base, batch=batch, console=console, token=token)
    typer.echo(json.dumps(summary, indent=2))
    if summary["rejected"]:
        raise typer.Exit(code=1)


@rules_app.command("doc")
def rules_doc(
    rules_md: Annotated[
        Path, typer.Option(help="The clinical catalogue the rules implement.")
    ] = Path("../shared/RULES.md"),
    out: Annotated[Path, typer.Option(help="Where to write the catalogue.")] = Path(
        "docs/rules.md"
    ),
) -> None:
    """Write the rule catalogue a clinician reviews (docs/rules.md), generated from the code."""
    from safetymon import rules_doc as catalogue

    if not rules_md.is_file():
        raise typer.BadParameter(f"no RULES.md at {rules_md}", param_hint="--rules-md")
    catalogue.write(rules_md, out)
    console.print(f"wrote {out} ({len(catalogue.rows())} rules)")


@schema_app.command("export")
def schema_export(
    directory: Annotated[Path, typer.Argument(help="Where to write one JSON Schema per type.")],
) -> None:
    """Write `<event_type>.v<N>.json` for every contract, and `asyncapi.json`."""
    from safetymon.asyncapi import write_asyncapi
    from schemas.export import json_schemas

    directory.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (directory / name).write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    asyncapi = write_asyncapi(directory)
    console.print(f"wrote {len(json_schemas())} schemas and {asyncapi.name} to {directory}")


if __name__ == "__main__":
    app()
