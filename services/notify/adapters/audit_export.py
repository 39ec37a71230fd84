"""Parquet snapshots of the notify audit trail and outbox for auditors (adapters layer).

`copy_notify_tables` runs on whichever thread owns the connection: the store's DuckDB writer
thread while notify runs, or a read-only connection of `safetymon audit export --offline`
when it does not. The running service answers snapshot requests over NATS request/reply on
`<namespace>.notify.audit.snapshot` (notify has no HTTP server).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import duckdb

from kit import snapshots
from kit.duckdb_worker import transaction
from kit.snapshots import Export, SnapshotRequestError, new_snapshot_dir, sql_literal
from schemas import GENESIS_HASH
from schemas.snapshots import ChainSpan, FileReport
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
_FILES: Final = (AUDIT_TRAIL_FILE, OUTBOX_FILE)
#: Re-exported: what callers of this module have always imported from it.
__all__ = [
    "AUDIT_TRAIL_FILE",
    "OUTBOX_FILE",
    "Export",
    "SnapshotRequestError",
    "build_snapshot_responder",
    "copy_notify_tables",
    "new_snapshot_dir",
    "requested_directory",
    "snapshot_subject",
]


def snapshot_subject(namespace: str) -> str:
    """Subject of the notify service's snapshot request/reply endpoint."""
    return f"{namespace}.notify.audit.snapshot"


def copy_notify_tables(con: duckdb.DuckDBPyConnection, directory: Path) -> dict[str, FileReport]:
    """COPY the audit trail (by seq) and the outbox to Parquet files in `directory`.

    Both copies and the chain summary are read in one transaction: they describe one moment.
    """
    trail, outbox = directory / AUDIT_TRAIL_FILE, directory / OUTBOX_FILE

    def body() -> tuple[tuple[Any, ...], int]:
        con.execute(f"COPY ({_AUDIT_SELECT}) TO {sql_literal(trail)} (FORMAT parquet)")
        con.execute(f"COPY ({_OUTBOX_SELECT}) TO {sql_literal(outbox)} (FORMAT parquet)")
        summary = con.execute(_AUDIT_SUMMARY).fetchone() or (0, None, None, None)
        outbox_rows = con.execute("SELECT count(*) FROM outbox").fetchone() or (0,)
        return summary, int(outbox_rows[0])

    (rows, first, last, head), outbox_rows = transaction(con, body)
    chain: ChainSpan = {"first_seq": first, "last_seq": last, "head": head or GENESIS_HASH}
    return {
        AUDIT_TRAIL_FILE: {"path": str(trail), "rows": int(rows), "chain": chain},
        OUTBOX_FILE: {"path": str(outbox), "rows": outbox_rows},
    }


def requested_directory(data: bytes, *, default_root: Path) -> Path:
    """Where a snapshot request asks notify's files to go (kit/snapshots.py has the rules)."""
    return snapshots.requested_directory(
        data, default_root=default_root, files=_FILES, owner="notify"
    )


def build_snapshot_responder(
    export: Export, *, default_root: Path, log: Logger
) -> Callable[[Msg], Awaitable[None]]:
    """Build the NATS callback answering snapshot requests; every request gets a reply."""
    return snapshots.build_snapshot_responder(
        export, default_root=default_root, files=_FILES, owner="notify", log=log
    )
