"""`safetymon audit`: export a tamper-evident bundle and verify one offline (CLI shell).

Exit codes: 0 all verified (or exported); 1 the bundle is broken or the export failed;
2 the command was used wrongly or the directory is not a bundle this version reads.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

audit_app = typer.Typer(
    help="Auditors: export the logs as a tamper-evident bundle, verify a bundle offline.",
    no_args_is_help=True,
)
_err = Console(stderr=True)


@audit_app.command("export")
def export(  # noqa: PLR0913, PLR0917 - one parameter per command-line option
    out: Annotated[Path, typer.Option(help="New or empty directory for the bundle.")],
    ingest_url: Annotated[
        str | None,
        typer.Option(help="Ingest API base URL (default: http://127.0.0.1:$SAFETYMON_HTTP_PORT)."),
    ] = None,
    nats_url: Annotated[
        str, typer.Option(envvar="SAFETYMON_NATS_URL", help="NATS server of the notify service.")
    ] = "nats://127.0.0.1:4222",
    namespace: Annotated[
        str, typer.Option(envvar="SAFETYMON_NAMESPACE", help="Deployment namespace.")
    ] = "safetymon",
    offline: Annotated[
        bool, typer.Option(help="Services stopped: read their DuckDB files read-only.")
    ] = False,
    data_dir: Annotated[
        Path, typer.Option(envvar="SAFETYMON_DATA_DIR", help="With --offline: the data dir.")
    ] = Path("data"),
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for each service.")] = 60,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Ask the running services for snapshots (or read stopped files) and write a bundle."""
    from safetymon.audit.errors import ExportError
    from safetymon.audit.render import print_manifest

    try:
        if offline:
            from safetymon.audit.offline import export_offline

            manifest = export_offline(data_dir, out)
        else:
            from safetymon.audit.export import export_online

            url = ingest_url or f"http://127.0.0.1:{os.environ.get('SAFETYMON_HTTP_PORT', '8080')}"
            manifest = asyncio.run(
                export_online(
                    out, ingest_url=url, nats_url=nats_url, namespace=namespace, timeout=timeout
                )
            )
    except ExportError as exc:
        _err.print(f"[red]export failed:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from exc
    if as_json:
        typer.echo(json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True))
    else:
        print_manifest(Console(), out, manifest)


@audit_app.command("verify")
def verify(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory written by `audit export`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check every file's sha256 and recompute both hash chains; exit 1 if anything is broken."""
    from safetymon.audit.errors import BundleError
    from safetymon.audit.reader import verify_bundle
    from safetymon.audit.render import print_report, report_json

    try:
        manifest, report = verify_bundle(bundle)
    except BundleError as exc:
        _err.print(f"[red]cannot verify:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from exc
    if as_json:
        typer.echo(json.dumps(report_json(bundle, manifest, report), indent=2))
    else:
        print_report(Console(), bundle, manifest, report)
    if not report.ok:
        raise typer.Exit(code=1)
