"""`safetymon ack`, `safetymon notifications` and `safetymon routes test` (notify's commands).

`ack` and `notifications` ask the running notify service over NATS request/reply: the
notify DuckDB file has one writer, the notify process. `notifications --snapshot DIR` reads
an exported audit snapshot instead. `routes test` needs nothing running: it applies the
routing file to a signal and shows who would be told, how and when.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import nats
import typer
from rich.table import Table

from safetymon._console import output_console

if TYPE_CHECKING:
    from services.notify.ports import DeliveryLogRow

app_routes = typer.Typer(help="Routing of safety signals to people.", no_args_is_help=True)
NatsUrl = Annotated[str, typer.Option(envvar="SAFETYMON_NATS_URL", help="NATS server URL.")]
Namespace = Annotated[str, typer.Option(envvar="SAFETYMON_NAMESPACE", help="Deployment namespace.")]
_WAIT_S = 10.0


async def _request(url: str, subject: str, body: dict[str, Any]) -> dict[str, Any]:
    from safetymon.nats_auth import operator_settings
    from safetymon.runner import default_data_dir

    # $SAFETYMON_NATS_* as the services use, else the admin user of `safetymon up`'s server.
    options = operator_settings(default_data_dir()).nats_connect_options()
    nc = await nats.connect(url, max_reconnect_attempts=1, connect_timeout=_WAIT_S, **options)
    try:
        message = await nc.request(subject, json.dumps(body).encode("utf-8"), timeout=_WAIT_S)
    except nats.errors.NoRespondersError as exc:
        msg = f"no notify service answers on {subject}: is it running?"
        raise typer.BadParameter(msg) from exc
    finally:
        await nc.close()
    reply: dict[str, Any] = json.loads(message.data)
    return reply


def ack(
    signal_id: Annotated[UUID, typer.Argument(help="The signal id printed in the email.")],
    by: Annotated[str, typer.Option("--by", help="Who takes responsibility (a name or role).")],
    reason: Annotated[str, typer.Option("--reason", help="Why / what happens next.")],
    nats_url: NatsUrl = "nats://127.0.0.1:4222",
    namespace: Namespace = "safetymon",
) -> None:
    """Acknowledge a safety alert (stops its escalation); recorded with who, when and why."""
    from services.notify.adapters.nats_requests import ack_subject

    body = {"signal_id": str(signal_id), "by": by, "reason": reason}
    reply = asyncio.run(_request(nats_url, ack_subject(namespace), body))
    if "error" in reply:
        typer.echo(f"refused ({reply.get('status')}): {reply['error']}", err=True)
        raise typer.Exit(code=1)
    typer.echo(json.dumps(reply["acknowledgement"], indent=2))


def notifications(
    signal: Annotated[UUID | None, typer.Option("--signal", help="One signal's log.")] = None,
    participant: Annotated[
        str | None, typer.Option("--participant", help="Everything about one participant.")
    ] = None,
    snapshot: Annotated[
        Path | None, typer.Option(help="Read an exported audit snapshot directory instead.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    nats_url: NatsUrl = "nats://127.0.0.1:4222",
    namespace: Namespace = "safetymon",
) -> None:
    """List every attempt, SMTP reply, acknowledgement and escalation of a signal."""
    if signal is None and participant is None:
        raise typer.BadParameter("give --signal or --participant")
    entries: list[DeliveryLogRow]
    if snapshot is not None:
        entries = _from_snapshot(snapshot, signal=signal, participant=participant)
    else:
        from services.notify.adapters.nats_requests import log_subject

        body = {"signal_id": str(signal) if signal else None, "participant_id": participant}
        reply = asyncio.run(_request(nats_url, log_subject(namespace), body))
        if "error" in reply:
            typer.echo(f"error: {reply['error']}", err=True)
            raise typer.Exit(code=1)
        entries = reply["entries"]
    if as_json:
        for entry in entries:
            typer.echo(json.dumps(entry, sort_keys=True))
        return
    output_console().print(_table(entries))


def _from_snapshot(
    directory: Path, *, signal: UUID | None, participant: str | None
) -> list[DeliveryLogRow]:
    import duckdb

    from services.notify.adapters._duckdb_alerts import log_rows

    trail = directory / "notify_audit_trail.parquet"
    con = duckdb.connect()  # in memory: the snapshot file is read, never a live DuckDB file
    try:
        rows = con.execute(
            "SELECT seq, event_type, recorded_at, notification_id, signal_id, wire "
            "FROM read_parquet($path) WHERE ($s IS NULL OR signal_id = $s) AND "
            "($p IS NULL OR json_extract_string(wire, '$.participant_id') = $p) ORDER BY seq",
            {"path": str(trail), "s": str(signal) if signal else None, "p": participant},
        ).fetchall()
    finally:
        con.close()
    return log_rows(rows)


def _table(entries: list[DeliveryLogRow]) -> Table:
    table = Table(title=f"Delivery log ({len(entries)} entries)")
    for column in ("seq", "at (UTC)", "event", "role / by", "address", "attempt", "detail"):
        table.add_column(column)
    for e in entries:
        who = e.get("role") or e.get("by") or ",".join(e.get("to_roles", []))
        detail = (
            e.get("smtp_reply") or e.get("error") or e.get("reason")
            or (f"level {e['level']}" if "level" in e else "")
        )  # fmt: skip
        table.add_row(
            str(e["seq"]), e["at"][:19].replace("T", " "), e["event_type"], who,
            e.get("address", ""), str(e.get("attempt", "")), str(detail),
        )  # fmt: skip
    return table


@app_routes.command("test")
def routes_test(
    signal_file: Annotated[Path, typer.Argument(help="A SignalRaised or SignalUpdated JSON.")],
    routing: Annotated[
        Path | None, typer.Option(envvar="SAFETYMON_ROUTING", help="Routing file.")
    ] = None,
    escalation_minutes: Annotated[
        float, typer.Option(envvar="SAFETYMON_ESCALATION_MINUTES", help="U0 escalation delay.")
    ] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Show who would be told about SIGNAL_FILE, in which role, and when."""
    from schemas import SIGNAL_ADAPTER
    from services.notify.core.timing import describe_routes
    from services.notify.service import load_routing

    signal = SIGNAL_ADAPTER.validate_json(signal_file.read_bytes())
    if routing is None:  # no demo default: the answer depends on the routing in force
        raise typer.BadParameter("give --routing or set SAFETYMON_ROUTING", param_hint="--routing")
    rules = load_routing(routing)
    routes = describe_routes(signal, rules, escalation_minutes=escalation_minutes)
    if as_json:
        for row in routes:
            fields = {"when": row.when, "role": row.role, "address": row.address, "note": row.note}
            typer.echo(json.dumps(fields, sort_keys=True))
        return
    table = Table(title=f"{signal.payload.urgency.value} {signal.payload.category}: "
                        f"{signal.participant_id} site {signal.site_id}")  # fmt: skip
    for column in ("when", "role", "address", "note"):
        table.add_column(column)
    for row in routes:
        table.add_row(row.when, row.role, row.address, row.note)
    output_console().print(table)


def register(app: typer.Typer) -> None:
    """Add notify's commands to the `safetymon` app."""
    app.command()(ack)
    app.command()(notifications)
    app.add_typer(app_routes, name="routes")
