"""Parquet snapshots of the notify audit trail and outbox for auditors (adapters layer).

`copy_notify_tables` runs on whichever thread owns the connection: the store's DuckDB writer
thread while notify runs, or a read-only connection of `safetymon audit export --offline`
when it does not. The running service answers snapshot requests over NATS request/reply on
`<namespace>.notify.audit.snapshot` (notify has no HTTP server).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import duckdb

from kit.duckdb_worker import transaction
from schemas import GENESIS_HASH
from services.notify.ports import Logger

if TYPE_CHECKING:
    from nats.aio.msg import Msg

AUDIT_TRAIL_FILE: Final = "notify_audit_trail.parquet"
OUTBOX_FILE: Final = "notify_outbox.parquet"
_AUDIT_SELECT = """
SELECT seq, event_id::VARCHAR AS event_id, event_type,
       notification_id::VARCHAR AS notification_id, signal_id::VARCHAR AS signal_id,
       recorded_at, wire, prev_hash, hash
FROM audit_trail ORDER BY seq
"""
_AUDIT_SUMMARY = "SELECT count(*), min(seq), max(seq), arg_max(hash, seq) FROM audit_trail"
# The outbox is a projection (its rows change as mail is sent): exported, not chained.
_OUTBOX_SELECT = """
SELECT * REPLACE (notification_id::VARCHAR AS notification_id, signal_id::VARCHAR AS signal_id,
                  correlation_id::VARCHAR AS correlation_id)
FROM outbox ORDER BY intended_at, notification_id
"""
Export = Callable[[Path], Awaitable[dict[str, Any]]]


class SnapshotRequestError(ValueError):
    """A snapshot request the service will not carry out; the reply says why."""


def snapshot_subject(namespace: str) -> str:
    """Subject of the notify service's snapshot request/reply endpoint."""
    return f"{namespace}.notify.audit.snapshot"


def copy_notify_tables(con: duckdb.DuckDBPyConnection, directory: Path) -> dict[str, Any]:
    """COPY the audit trail (by seq) and the outbox to Parquet files in `directory`.

    Both copies and the chain summary are read in one transaction: they describe one moment.
    """
    trail, outbox = directory / AUDIT_TRAIL_FILE, directory / OUTBOX_FILE

    def body() -> tuple[tuple[Any, ...], int]:
        con.execute(f"COPY ({_AUDIT_SELECT}) TO {_literal(trail)} (FORMAT parquet)")
        con.execute(f"COPY ({_OUTBOX_SELECT}) TO {_literal(outbox)} (FORMAT parquet)")
        summary = con.execute(_AUDIT_SUMMARY).fetchone() or (0, None, None, None)
        outbox_rows = con.execute("SELECT count(*) FROM outbox").fetchone() or (0,)
        return summary, int(outbox_rows[0])

    (rows, first, last, head), outbox_rows = transaction(con, body)
    chain = {"first_seq": first, "last_seq": last, "head": head or GENESIS_HASH}
    return {
        AUDIT_TRAIL_FILE: {"path": str(trail), "rows": int(rows), "chain": chain},
        OUTBOX_FILE: {"path": str(outbox), "rows": outbox_rows},
    }


def _literal(path: Path) -> str:
    # COPY takes no parameter for its target; quote the path as an SQL string literal.
    return "'" + str(path).replace("'", "''") + "'"


def new_snapshot_dir(root: Path) -> Path:
    """Make a new, empty directory `<root>/<UTC timestamp>/`."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    for attempt in range(1000):
        directory = root / (stamp if attempt == 0 else f"{stamp}-{attempt}")
        try:
            directory.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            continue
        return directory
    msg = f"no free snapshot directory under {root} for {stamp}"
    raise RuntimeError(msg)


def requested_directory(data: bytes, *, default_root: Path) -> Path:
    """Where a snapshot request asks the files to go; a new directory under the root if unset.

    Raises:
        SnapshotRequestError: the request is not `{"directory": "/absolute/path"}` (or `{}`), or the
            directory already holds a snapshot: files are never overwritten.

    """
    request = json.loads(data or b"{}")
    if not isinstance(request, dict):
        raise SnapshotRequestError('the request must be a JSON object: {"directory": "/abs/path"}')
    wanted = request.get("directory")
    if wanted is None:
        return new_snapshot_dir(default_root)
    if not isinstance(wanted, str) or not Path(wanted).is_absolute():
        raise SnapshotRequestError("directory must be an absolute path on notify's machine")
    directory = Path(wanted)
    taken = [name for name in (AUDIT_TRAIL_FILE, OUTBOX_FILE) if (directory / name).exists()]
    if taken:
        msg = f"{directory} already holds {', '.join(taken)}: nothing is overwritten"
        raise SnapshotRequestError(msg)
    return directory


def build_snapshot_responder(
    export: Export, *, default_root: Path, log: Logger
) -> Callable[[Msg], Awaitable[None]]:
    """Build the NATS callback answering snapshot requests; every request gets a reply."""

    async def respond(msg: Msg) -> None:
        try:
            directory = requested_directory(msg.data, default_root=default_root)
            reply: dict[str, Any] = await export(directory)
        except (SnapshotRequestError, json.JSONDecodeError) as exc:  # the requester learns why
            reply = {"error": f"bad snapshot request: {exc}"}
        except Exception as exc:  # reported to the requester and logged, never swallowed
            log.error("audit_snapshot_failed", error=type(exc).__name__, exc_info=True)
            reply = {"error": f"snapshot failed: {type(exc).__name__}: {str(exc)[:300]}"}
        if msg.reply:
            await msg.respond(json.dumps(reply).encode("utf-8"))

    return respond
