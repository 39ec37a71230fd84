"""`safetymon audit`: export, verify, replay, reconcile and backtest, all read-only (CLI shell).

Exit codes: 0 all verified (or exported, or no gap found); 1 the bundle is broken, the
export failed, reconcile found a gap, or replay's signals differ from the live ones; 2 the
command was used wrongly or the directory is not a bundle this version reads.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from safetymon._console import output_console

if TYPE_CHECKING:
    from services.audit.adapters.source import Live

audit_app = typer.Typer(
    help=(
        "Auditors, read-only: export a tamper-evident bundle, verify it offline, replay it as "
        "of a time, reconcile signals with notifications, backtest a rule, serve it over HTTP."
    ),
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
    from safetymon.audit_render.verify import print_manifest
    from services.audit.core.errors import ExportError

    try:
        if offline:
            from services.audit.adapters.export_offline import export_offline

            manifest = export_offline(data_dir, out)
        else:
            from services.audit.adapters.export_online import export_online

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
        print_manifest(output_console(), out, manifest)


@audit_app.command("verify")
def verify(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory written by `audit export`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    heads_from_nats: Annotated[
        bool,
        typer.Option(
            "--heads-from-nats",
            help="Compare the log with the heads ingest published on NATS, read now, instead "
            "of the bundle's own copy (credentials: SAFETYMON_NATS_*).",
        ),
    ] = False,
    nats_url: Annotated[
        str, typer.Option(envvar="SAFETYMON_NATS_URL", help="With --heads-from-nats: NATS.")
    ] = "nats://127.0.0.1:4222",
    namespace: Annotated[
        str, typer.Option(envvar="SAFETYMON_NAMESPACE", help="Deployment namespace.")
    ] = "safetymon",
) -> None:
    """Check every file's sha256 and recompute every hash chain; exit 1 if anything is broken."""
    from safetymon.audit_render.verify import print_report
    from services.audit.adapters.bundle_reader import verify_bundle
    from services.audit.adapters.documents import report_json
    from services.audit.adapters.published_heads import HeadsUnavailableError, published_heads
    from services.audit.core.errors import BundleError

    try:
        heads = asyncio.run(published_heads(nats_url, namespace)) if heads_from_nats else None
    except HeadsUnavailableError as exc:
        # Exit 2, not 1: nothing was found wrong with the bundle, and nothing was checked.
        raise _fail("cannot verify", exc, 2) from exc
    if heads == []:
        # Most likely the wrong namespace or server: a pass here would compare nothing.
        none = HeadsUnavailableError(f"no published heads in namespace {namespace!r}")
        raise _fail("cannot verify", none, 2)
    try:
        manifest, report = verify_bundle(bundle, heads=heads)
    except BundleError as exc:
        _err.print(f"[red]cannot verify:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from exc
    if as_json:
        typer.echo(json.dumps(report_json(bundle, manifest, report), indent=2))
    else:
        print_report(output_console(), bundle, manifest, report)
    if not report.ok:
        raise typer.Exit(code=1)


# Options shared by the queries that read a bundle or a live snapshot.
BundleArg = Annotated[
    Path | None, typer.Argument(help="Bundle directory (omit with --live).", show_default=False)
]
LiveOpt = Annotated[
    bool, typer.Option("--live", help="Snapshot the running services first (read-only).")
]
IngestUrlOpt = Annotated[
    str | None,
    typer.Option(
        help="With --live: ingest API base URL (default: http://127.0.0.1:$SAFETYMON_HTTP_PORT)."
    ),
]
NatsUrlOpt = Annotated[
    str, typer.Option(envvar="SAFETYMON_NATS_URL", help="With --live: NATS server of notify.")
]
NamespaceOpt = Annotated[
    str, typer.Option(envvar="SAFETYMON_NAMESPACE", help="With --live: deployment namespace.")
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(help="Trial configuration file (default: the one the rules service reads)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
AsOfOpt = Annotated[
    str | None,
    typer.Option(help="Recorded time bound: ISO 8601; a bare date = end of that day (UTC)."),
]
WorkersOpt = Annotated[int | None, typer.Option(min=1, help="Processes (default: auto).")]
CheckpointsOpt = Annotated[
    Path | None,
    typer.Option(
        envvar="SAFETYMON_REPLAY_CHECKPOINTS",
        help="Directory of verified replay checkpoints: start from the newest one this replay "
        "reaches and leave new ones (default: none; fold from the first entry).",
        show_envvar=True,
    ),
]


def _live(live: bool, ingest_url: str | None, nats_url: str, namespace: str) -> Live | None:
    from services.audit.adapters.source import Live

    if not live:
        return None
    url = ingest_url or f"http://127.0.0.1:{os.environ.get('SAFETYMON_HTTP_PORT', '8080')}"
    return Live(ingest_url=url, nats_url=nats_url, namespace=namespace)


def _fail(what: str, exc: Exception, code: int) -> typer.Exit:
    _err.print(f"[red]{what}:[/red] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(code=code)


@contextmanager
def _errors(what: str) -> Iterator[None]:
    """Exit 2 for what the auditor must fix (a bad path or file), 1 for a failed check."""
    from services.audit.core.errors import (
        AuditError,
        BundleError,
        ConfigError,
        RoutingError,
        RuleVersionError,
    )

    try:
        yield
    except (BundleError, ConfigError, RoutingError, RuleVersionError) as exc:
        raise _fail(what, exc, 2) from exc
    except AuditError as exc:
        raise _fail(what, exc, 1) from exc


def _moment(text: str | None) -> datetime | None:
    from services.audit.core.moments import parse_moment

    try:
        return None if text is None else parse_moment(text)
    except ValueError as exc:
        raise _fail("--as-of", exc, 2) from exc


@audit_app.command("replay")
def replay(  # noqa: PLR0913, PLR0917 - one parameter per command-line option
    bundle: BundleArg = None,
    as_of: AsOfOpt = None,
    live: LiveOpt = False,
    ingest_url: IngestUrlOpt = None,
    nats_url: NatsUrlOpt = "nats://127.0.0.1:4222",
    namespace: NamespaceOpt = "safetymon",
    config: ConfigOpt = None,
    workers: WorkersOpt = None,
    checkpoints: CheckpointsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rebuild what the system knew and decided as of a recorded time; sends and writes nothing.

    When the bundle holds the live signals, they are compared with the replayed ones: exit 1
    on any difference.
    """
    from safetymon.audit_render.replay import print_comparison, print_replay
    from services.audit.adapters.documents import comparison_json, replay_json
    from services.audit.adapters.live_signals import compare_bundle
    from services.audit.adapters.source import open_source
    from services.audit.main import build_queries

    moment = _moment(as_of)
    where = _live(live, ingest_url, nats_url, namespace)
    with _errors("cannot replay"), open_source(bundle, where) as source:
        result = build_queries().replay(
            source, as_of=moment, config=config, workers=workers, checkpoints=checkpoints
        )
        comparison = compare_bundle(source.path, result)
        described = source.described
    if as_json:
        document = replay_json(result, source=described)
        document["live_signals"] = None if comparison is None else comparison_json(comparison)
        typer.echo(json.dumps(document, indent=2))
    else:
        print_replay(output_console(), result, source=json.dumps(described))
        if comparison is not None:
            print_comparison(output_console(), comparison)
    if comparison is not None and not comparison.ok:
        raise typer.Exit(code=1)


@audit_app.command("reconcile")
def reconcile(  # noqa: PLR0913, PLR0917 - one parameter per command-line option
    bundle: BundleArg = None,
    as_of: AsOfOpt = None,
    live: LiveOpt = False,
    ingest_url: IngestUrlOpt = None,
    nats_url: NatsUrlOpt = "nats://127.0.0.1:4222",
    namespace: NamespaceOpt = "safetymon",
    config: ConfigOpt = None,
    routing: Annotated[
        Path | None, typer.Option(help="Routing file in force (default: the one notify reads).")
    ] = None,
    late_after: Annotated[
        list[str] | None,
        typer.Option(help="Allowance per urgency, e.g. U0=15m (repeatable; s, m, h, d)."),
    ] = None,
    ack_within: Annotated[
        float, typer.Option(min=0, help="Minutes a U0/U1 signal may stay unacknowledged.")
    ] = 60,
    workers: WorkersOpt = None,
    checkpoints: CheckpointsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Trace every signal to its notifications and acknowledgement; exit 1 on any gap."""
    from datetime import timedelta

    from safetymon.audit_render.reconcile import print_reconcile
    from services.audit.adapters.documents import reconcile_json
    from services.audit.adapters.source import open_source
    from services.audit.app import ReconcileQuery
    from services.audit.core.moments import parse_allowance
    from services.audit.main import build_queries

    try:
        allowances = dict(parse_allowance(text) for text in late_after or [])
    except ValueError as exc:
        raise _fail("--late-after", exc, 2) from exc
    query = ReconcileQuery(
        as_of=_moment(as_of), config=config, routing=routing, late_after=allowances,
        ack_within=timedelta(minutes=ack_within), workers=workers, checkpoints=checkpoints,
    )  # fmt: skip
    where = _live(live, ingest_url, nats_url, namespace)
    with _errors("cannot reconcile"), open_source(bundle, where) as source:
        result, now = build_queries().reconcile(source, query)
        described = source.described
    if as_json:
        typer.echo(json.dumps(reconcile_json(result, source=described, now=now), indent=2))
    else:
        print_reconcile(output_console(), result, now=now)
    if not result.ok:
        raise typer.Exit(code=1)


@audit_app.command("backtest")
def backtest(  # noqa: PLR0913, PLR0917 - one parameter per command-line option
    rule: Annotated[str, typer.Option("--rule", help="Rule id, e.g. INF-01.")],
    version: Annotated[int, typer.Option("--version", min=1, help="Candidate version.")],
    bundle: BundleArg = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Diff signals from this clinical time.")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="... up to this clinical time.")] = None,
    candidate_config: Annotated[
        Path | None, typer.Option(help="Trial configuration the candidate runs with.")
    ] = None,
    config: ConfigOpt = None,
    live: LiveOpt = False,
    ingest_url: IngestUrlOpt = None,
    nats_url: NatsUrlOpt = "nats://127.0.0.1:4222",
    namespace: NamespaceOpt = "safetymon",
    workers: WorkersOpt = None,
    checkpoints: CheckpointsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a candidate rule version over the whole log; diff it against the live rule."""
    from safetymon.audit_render.backtest import print_backtest
    from services.audit.adapters.documents import backtest_json
    from services.audit.adapters.source import open_source
    from services.audit.app import BacktestQuery
    from services.audit.main import build_queries

    query = BacktestQuery(
        rule_id=rule, version=version, config=config, candidate_config=candidate_config,
        start=_moment(start), end=_moment(end), workers=workers, checkpoints=checkpoints,
    )  # fmt: skip
    where = _live(live, ingest_url, nats_url, namespace)
    with _errors("cannot backtest"), open_source(bundle, where) as source:
        result = build_queries().backtest(source, query)
        described = source.described
    if as_json:
        typer.echo(json.dumps(backtest_json(result, source=described), indent=2))
    else:
        print_backtest(output_console(), result)


@audit_app.command("serve")
def serve(  # noqa: PLR0913, PLR0917 - one parameter per command-line option
    bundles: Annotated[Path, typer.Option(help="Directory whose subdirectories are bundles.")],
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port.")] = 8090,
    query_log: Annotated[
        Path | None, typer.Option(help="Query log (default: <bundles>/audit_queries.jsonl).")
    ] = None,
    config: ConfigOpt = None,
    routing: Annotated[
        Path | None, typer.Option(help="Routing file in force (default: the one notify reads).")
    ] = None,
    checkpoints: CheckpointsOpt = None,
) -> None:
    """Serve the audit queries over HTTP, read-only; every route needs an auditor token."""
    import uvicorn

    from kit.http_limits import server_options
    from services.audit.config import Settings
    from services.audit.main import build_app

    if not bundles.is_dir():
        raise _fail("--bundles", NotADirectoryError(str(bundles)), 2)
    settings = Settings(
        bundles=bundles, host=host, port=port, query_log=query_log, trial_config=config,
        routing=routing, checkpoints=checkpoints,
    )  # fmt: skip
    api = build_app(settings)
    # server_options bounds slow clients.
    uvicorn.run(api, host=settings.host, port=settings.port, **server_options())
