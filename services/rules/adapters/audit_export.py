"""Parquet snapshot of the signals the live rules service raised, for auditors (adapters layer).

`copy_signals` runs on whichever thread owns the connection: the store's DuckDB writer thread
while rules runs (answering `<namespace>.audit.rules.snapshot` over NATS request/reply, as
notify does), or a read-only connection of `safetymon audit export --offline` when it does
not. Either way the same SQL writes the same file. The subject is not `<namespace>.rules.…`:
the signals stream captures `<namespace>.rules.>`, and a request stored there would be read
by notify as a signal and answered by JetStream's PubAck before this service could reply.

Row order is `outbox_seq`: the outbox's own counter, assigned in the order the service
produced the signals (batch by batch, in each batch's evaluation order) and never reused, so
the order is deterministic. It is not the log position of the cause: the rules file does not
hold log positions, so a row names its cause (`cause_event_id`, the fact or clock tick that
raised it) and the auditor's tools find its seq in the bundle's event log.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import duckdb

from kit import snapshots
from kit.duckdb_worker import transaction
from kit.snapshots import Export, sql_literal

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from nats.aio.msg import Msg

SIGNALS_FILE: Final = "signals.parquet"
# `body` is the exact bytes the relay published (pydantic's compact JSON of the signal), kept
# as UTF-8 text; the other columns are read from it so they cannot disagree with it.
_SELECT = """
WITH o AS (SELECT *, decode(body) AS text FROM signal_outbox)
SELECT seq AS outbox_seq,
       signal_id::VARCHAR AS signal_id,
       CASE json_extract_string(text, '$.event_type')
           WHEN 'signal_raised' THEN 'raised'
           WHEN 'signal_updated' THEN 'updated'
           ELSE json_extract_string(text, '$.event_type') END AS kind,
       json_extract_string(text, '$.status') AS status,
       json_extract_string(text, '$.signal_id') AS updates_signal_id,
       json_extract_string(text, '$.payload.rule_id') AS rule_id,
       CAST(json_extract(text, '$.payload.rule_version') AS INTEGER) AS rule_version,
       json_extract_string(text, '$.trial_id') AS trial_id,
       json_extract_string(text, '$.site_id') AS site_id,
       json_extract_string(text, '$.participant_id') AS participant_id,
       json_extract_string(text, '$.causation_id') AS cause_event_id,
       subject,
       text AS body,
       published_at
FROM o ORDER BY seq, signal_id
"""
_COUNT = "SELECT count(*) FROM signal_outbox"


def copy_signals(con: duckdb.DuckDBPyConnection, directory: Path) -> dict[str, Any]:
    """COPY the signal outbox, in production order, to `<directory>/signals.parquet`.

    The copy and its row count are read in one transaction: they describe one moment.
    """
    target = directory / SIGNALS_FILE

    def body() -> int:
        con.execute(f"COPY ({_SELECT}) TO {sql_literal(target)} (FORMAT parquet)")
        ((rows,),) = con.execute(_COUNT).fetchall()
        return int(rows)

    rows = transaction(con, body)
    return {"path": str(target), "rows": rows}


def snapshot_subject(namespace: str) -> str:
    """Subject of the rules service's snapshot request/reply endpoint (outside every stream)."""
    return f"{namespace}.audit.rules.snapshot"


def requested_directory(data: bytes, *, default_root: Path) -> Path:
    """Where a snapshot request asks the signals file to go (kit/snapshots.py has the rules)."""
    return snapshots.requested_directory(
        data, default_root=default_root, files=(SIGNALS_FILE,), owner="rules"
    )


def build_snapshot_responder(
    export: Export, *, default_root: Path, log: snapshots.ErrorLog
) -> Callable[[Msg], Awaitable[None]]:
    """Build the NATS callback answering snapshot requests; every request gets a reply."""
    return snapshots.build_snapshot_responder(
        export, default_root=default_root, files=(SIGNALS_FILE,), owner="rules", log=log
    )
