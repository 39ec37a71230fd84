"""`safetymon report`: the DSMB safety report by arm on the command line (edge).

`report dsmb` reads the event log from an audit bundle (`--bundle`, written by
`safetymon audit export`) or from the running ingest service's snapshot endpoint, and writes
the HTML report, every table as CSV and Parquet, and `report.json` into `--out`. With
`--publish` it announces the report on NATS as a `ReportIssued` fact for notify to email.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

report_app = typer.Typer(help="DSMB safety reports by arm.", no_args_is_help=True)


class Kind(StrEnum):
    """Why a report is issued."""

    periodic = "dsmb_periodic"
    ad_hoc = "dsmb_ad_hoc"


def _as_of(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO 8601 time: {value!r}") from exc
    if moment.utcoffset() is None:
        raise typer.BadParameter("give a time zone (e.g. 2024-06-01T00:00:00Z)")
    return moment


def _bundle_log(bundle: Path) -> Path:
    """The bundle's event log, checked against the SHA-256 its manifest records."""
    from kit.files import file_sha256
    from services.audit.adapters.bundle_reader import read_manifest
    from services.audit.core.errors import BundleError
    from services.audit.core.manifest import EVENT_LOG

    try:
        manifest = read_manifest(bundle)
    except BundleError as exc:
        raise typer.BadParameter(str(exc), param_hint="--bundle") from exc
    path = bundle / EVENT_LOG
    entry = manifest.files.get(EVENT_LOG)
    if not path.is_file() or entry is None or file_sha256(path) != entry.sha256:
        msg = f"{path} is missing or does not match its manifest; run `safetymon audit verify`"
        raise typer.BadParameter(msg, param_hint="--bundle")
    return path


@report_app.command("dsmb")
def dsmb(  # noqa: PLR0913 - the command's options
    *,
    as_of: Annotated[str, typer.Option(help="Recorded-time cut-off, ISO 8601 with zone.")],
    out: Annotated[Path, typer.Option(help="Directory for the HTML, CSV, Parquet files.")],
    bundle: Annotated[
        Path | None, typer.Option(help="Audit bundle to read (default: the live ingest API).")
    ] = None,
    ingest_url: Annotated[
        str | None, typer.Option(help="Ingest API (default http://$SAFETYMON_HTTP_HOST:PORT).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Report configuration TOML (default: the packaged v1).")
    ] = None,
    kind: Annotated[Kind, typer.Option(help="Periodic or ad hoc.")] = Kind.periodic,
    publish: Annotated[
        bool, typer.Option(help="Announce the report on NATS (ReportIssued) for notify.")
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="SAFETYMON_TOKEN",
            help="Bearer token of an auditor (ingest's snapshot routes); prefer the variable.",
            show_envvar=True,
        ),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(help="Keep the bundle's parsed log here for faster later reports."),
    ] = None,
) -> None:
    """Build the DSMB report as of a recorded time; print where it is and what it found."""
    from services.report.core.errors import ReportError
    from services.report.main import build_app

    moment = _as_of(as_of)
    try:
        service = build_app(config=config)
        if bundle is not None:
            issued = service.issue_from_log(
                _bundle_log(bundle), as_of=moment, out=out, kind=kind, projection=cache
            )
        else:
            with tempfile.TemporaryDirectory(prefix="safetymon-report-") as scratch:
                log = service.fetch_live_log(Path(scratch), ingest_url=ingest_url, token=token)
                issued = service.issue_from_log(log, as_of=moment, out=out, kind=kind)
        if publish:
            asyncio.run(service.announce(issued))
    except ReportError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    summary: dict[str, Any] = {
        "out": str(out),
        "as_of": issued.fact.occurred_at.isoformat().replace("+00:00", "Z"),
        "log_position": issued.report.position.seq,
        "chain_head": issued.report.position.chain_head,
        "stops_triggered": [f"{s.rule}/{s.arm}" for s in issued.report.stops if s.triggered],
        "report_id": str(issued.fact.event_id),
        "published": publish,
    }
    typer.echo(json.dumps(summary, indent=2))


@report_app.command("schedule")
def schedule(  # noqa: PLR0913 - the command's options
    *,
    out: Annotated[Path, typer.Option(help="Root directory; each report goes to <root>/<id>/.")],
    bundle: Annotated[
        Path | None, typer.Option(help="Audit bundle to read (default: the live ingest API).")
    ] = None,
    ingest_url: Annotated[str | None, typer.Option(help="Ingest API base URL.")] = None,
    config: Annotated[Path | None, typer.Option(help="Report configuration TOML.")] = None,
    publish: Annotated[
        bool, typer.Option(help="Announce each report on NATS (ReportIssued) for notify.")
    ] = True,
    every: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Hours between ticks (≤ 24 for the ad hoc promise); 0 runs one tick and exits.",
        ),
    ] = 0.0,
    token: Annotated[
        str | None, typer.Option(envvar="SAFETYMON_TOKEN", help="Auditor bearer token.")
    ] = None,
) -> None:
    """Issue the monthly report when its slot has passed, and an ad hoc one on a new STOP."""
    import time

    from services.report.core.errors import ReportError
    from services.report.main import build_app

    try:
        service = build_app(config=config)
        promised = service.config.schedule.ad_hoc_within_hours
        if every > promised:
            msg = f"ticks {every} h apart cannot keep the ad hoc promise of {promised} h"
            raise typer.BadParameter(msg, param_hint="--every")
        while True:
            with tempfile.TemporaryDirectory(prefix="safetymon-report-") as scratch:
                log = (
                    _bundle_log(bundle)
                    if bundle is not None
                    else service.fetch_live_log(Path(scratch), ingest_url=ingest_url, token=token)
                )
                issued = asyncio.run(service.schedule_tick(log, root=out, publish=publish))
            for done in issued:
                typer.echo(json.dumps({
                    "kind": done.fact.payload.report_kind, "report_id": str(done.fact.event_id),
                    "out": str(done.directory), "log_position": done.report.position.seq,
                    "published": publish,
                }))  # fmt: skip
            if every <= 0:
                return
            time.sleep(every * 3600)
    except ReportError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc


@report_app.command("serve")
def serve(
    *,
    root: Annotated[Path, typer.Option(help="Root directory of the issued reports.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8082,
    tokens_file: Annotated[
        Path | None,
        typer.Option(help="Token file (default: $SAFETYMON_TOKENS_FILE, else data/tokens.json)."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="SAFETYMON_TOKEN", help="Auditor token for on-demand builds."),
    ] = None,
) -> None:
    """Serve the DSMB report API (the address the DSMB emails link to) until interrupted.

    Every route needs a `dsmb` (or `admin`) token of the token file; an on-demand build
    (`POST /v1/reports/dsmb?as_of=`) reads the live log from ingest (the ingest address of
    the environment, as `report dsmb` reads it) with `--token`.
    """
    import uvicorn

    from kit.auth import AuthSettings, TokenStore
    from kit.http_limits import server_options
    from services.report.main import build_app

    service = build_app()
    tokens = TokenStore(tokens_file or AuthSettings().tokens_path)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    api = service.http_app(root=root, tokens=tokens, ingest_token=token)
    uvicorn.run(api, host=host, port=port, log_level="warning", **server_options())
