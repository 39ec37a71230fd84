"""Parquet snapshot of the live rules service's signals and config history (adapters layer).

`copy_rules_snapshot` runs on whichever thread owns the connection: the store's DuckDB
writer thread while rules runs (answering `<namespace>.audit.rules.snapshot` over NATS
request/reply, as notify does), or a read-only connection of `safetymon audit export
--offline` when it does not. Either way the same SQL writes the same files. The subject is
not `<namespace>.rules.…`: the signals stream captures `<namespace>.rules.>`, and a request
stored there would be read by notify as a signal and answered by JetStream's PubAck before
this service could reply.

Row order is `outbox_seq`: the outbox's own counter, assigned in the order the service
produced the signals (batch by batch, in each batch's evaluation order) and never reused, so
the order is deterministic. It is not the log position of the cause: the outbox does not
hold log positions, so a row names its cause (`cause_event_id`, the fact or clock tick that
raised it) and the auditor's tools find its seq in the bundle's event log.

The signals are hash-chained in the outbox (`_duckdb_sql.chain_signals`): each row carries
`prev_hash` and `hash`, `hash = sha256(prev_hash || "<outbox_seq>:" || body)`, and
`outbox_seq` is the chain's seq (no second `seq` column: two columns holding one position
could disagree). Rows written before the chain existed, and every row of a file too old to
have the columns (the offline export opens it read-only, so it cannot add them), hold NULL.

`rules_config_history.parquet` is copied in the same transaction: every trial configuration
the service switched to, from the log seq of the first fact evaluated under it, with the
exact TOML text, so a replay as of any time applies the configuration that was live then.
A rules file from before the history was kept (opened read-only by the offline export, so
the table cannot be created) gives the file with its columns and no rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

import duckdb

from kit import snapshots
from kit.duckdb_worker import transaction
from kit.logging import ErrorLog
from kit.snapshots import Export, sql_literal
from schemas.snapshots import FileReport
from services.rules.adapters._duckdb_sql import CONFIG_COLUMNS

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from nats.aio.msg import Msg

SIGNALS_FILE: Final = "signals.parquet"
CONFIG_HISTORY_FILE: Final = "rules_config_history.parquet"
#: What a snapshot writes, in the order it writes them.
SNAPSHOT_FILES: Final = (SIGNALS_FILE, CONFIG_HISTORY_FILE)
# `body` is the exact bytes the relay published (pydantic's compact JSON of the signal), kept
# as UTF-8 text; the other columns are read from it so they cannot disagree with it.
_SELECT = """
WITH o AS (SELECT *, decode(body) AS text FROM {outbox})
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
       published_at,
       prev_hash,
       hash
FROM o ORDER BY seq, signal_id
"""
#: The outbox of a file from before the chain, with NULL chain columns.
_UNCHAINED = (
    "(SELECT *, CAST(NULL AS VARCHAR) AS prev_hash, CAST(NULL AS VARCHAR) AS hash"
    " FROM signal_outbox)"
)
_COUNT = "SELECT count(*) FROM signal_outbox"
_HISTORY = f"SELECT {CONFIG_COLUMNS} FROM config_history ORDER BY from_seq"
_HISTORY_COUNT = "SELECT count(*) FROM config_history"
#: The same columns and types, no rows: for a rules file older than the history table.
_NO_HISTORY = """
SELECT CAST(NULL AS BIGINT) AS from_seq, CAST(NULL AS VARCHAR) AS config_version,
       CAST(NULL AS VARCHAR) AS config_sha256, CAST(NULL AS VARCHAR) AS config_toml,
       CAST(NULL AS VARCHAR) AS rule_versions, CAST(NULL AS TIMESTAMPTZ) AS activated_at
WHERE false
"""


def copy_signals(con: duckdb.DuckDBPyConnection, directory: Path) -> FileReport:
    """COPY the signal outbox, in production order, to `<directory>/signals.parquet`.

    The copy and its row count are read in one transaction: they describe one moment.
    """
    return transaction(
        con, lambda: _copy(con, directory, SIGNALS_FILE, _signals_select(con), _COUNT)
    )


def copy_rules_snapshot(con: duckdb.DuckDBPyConnection, directory: Path) -> dict[str, FileReport]:
    """COPY the signal outbox and the configuration history, both read in one transaction.

    Returns each file's report (path and rows) under its name.
    """

    def body() -> dict[str, FileReport]:
        ((kept,),) = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'config_history'"
        ).fetchall()
        history = (_HISTORY, _HISTORY_COUNT) if kept else (_NO_HISTORY, "SELECT 0")
        return {
            SIGNALS_FILE: _copy(con, directory, SIGNALS_FILE, _signals_select(con), _COUNT),
            CONFIG_HISTORY_FILE: _copy(con, directory, CONFIG_HISTORY_FILE, *history),
        }

    return transaction(con, body)


def _signals_select(con: duckdb.DuckDBPyConnection) -> str:
    ((chained,),) = con.execute(
        "SELECT count(*) FROM information_schema.columns"
        " WHERE table_name = 'signal_outbox' AND column_name = 'hash'"
    ).fetchall()
    return _SELECT.format(outbox="signal_outbox" if chained else _UNCHAINED)


def _copy(
    con: duckdb.DuckDBPyConnection, directory: Path, name: str, select: str, count: str
) -> FileReport:
    target = directory / name
    con.execute(f"COPY ({select}) TO {sql_literal(target)} (FORMAT parquet)")
    ((rows,),) = con.execute(count).fetchall()
    return {"path": str(target), "rows": int(rows)}


def snapshot_subject(namespace: str) -> str:
    """Subject of the rules service's snapshot request/reply endpoint (outside every stream)."""
    return f"{namespace}.audit.rules.snapshot"


def requested_directory(data: bytes, *, default_root: Path) -> Path:
    """Where a snapshot request asks the files to go (kit/snapshots.py has the rules)."""
    return snapshots.requested_directory(
        data, default_root=default_root, files=SNAPSHOT_FILES, owner="rules"
    )


def build_snapshot_responder(
    export: Export, *, default_root: Path, log: ErrorLog
) -> Callable[[Msg], Awaitable[None]]:
    """Build the NATS callback answering snapshot requests; every request gets a reply."""
    return snapshots.build_snapshot_responder(
        export, default_root=default_root, files=SNAPSHOT_FILES, owner="rules", log=log
    )
