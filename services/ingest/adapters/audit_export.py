"""Parquet snapshots of the hash-chained log for auditors (adapters layer).

`copy_event_log` runs on whichever thread owns the connection: the service's DuckDB writer
thread while ingest runs, or a read-only connection of `safetymon audit export --offline`
when it does not. Either way the same SQL writes the same file.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import duckdb

from kit.duckdb_worker import transaction
from kit.snapshots import Export
from schemas import GENESIS_HASH
from schemas.snapshots import ChainSpan, FileReport

EVENT_LOG_FILE: Final = "event_log.parquet"
#: Snapshot ids are timestamps (plus a counter on a clash); nothing else is ever resolved.
_SNAPSHOT_ID = re.compile(r"^\d{8}T\d{12}Z(-\d{1,3})?$")
_SELECT = """
SELECT seq, event_id::VARCHAR AS event_id, event_type, trial_id, site_id, participant_id,
       occurred_at, recorded_at, source, source_ref, content, prev_hash, hash
FROM event_log ORDER BY seq
"""
_SUMMARY = "SELECT count(*), min(seq), max(seq), arg_max(hash, seq) FROM event_log"


def copy_event_log(con: duckdb.DuckDBPyConnection, directory: Path) -> FileReport:
    """COPY event_log, ordered by seq, to `<directory>/event_log.parquet`.

    The copy and the summary (rows, first and last seq, head hash) are read in one
    transaction, so the summary describes exactly the rows in the file.
    """
    target = directory / EVENT_LOG_FILE

    def body() -> tuple[Any, ...]:
        con.execute(f"COPY ({_SELECT}) TO {_literal(target)} (FORMAT parquet)")
        return con.execute(_SUMMARY).fetchone() or (0, None, None, None)

    rows, first, last, head = transaction(con, body)
    chain: ChainSpan = {"first_seq": first, "last_seq": last, "head": head or GENESIS_HASH}
    return {"path": str(target), "rows": int(rows), "chain": chain}


def _literal(path: Path) -> str:
    # COPY takes no parameter for its target; quote the path as an SQL string literal.
    return "'" + str(path).replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class AuditExports:
    """Server-side snapshot directories `<root>/<snapshot id>/` and the export that fills one."""

    root: Path
    export: Export
    #: Snapshots kept: each holds a whole copy of the log, so older ones are removed when a
    #: new one is made (an export downloads its file right after asking for it).
    keep: int = 5

    def create(self) -> tuple[str, Path]:
        """Make a new, empty snapshot directory named by the current UTC time.

        The oldest snapshots beyond `keep` (the new one included) are deleted first.
        """
        self._expire(self.keep - 1)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        for attempt in range(1000):
            snapshot_id = stamp if attempt == 0 else f"{stamp}-{attempt}"
            directory = self.root / snapshot_id
            try:
                directory.mkdir(parents=True, exist_ok=False)
            except FileExistsError:
                continue
            return snapshot_id, directory
        msg = f"no free snapshot directory under {self.root} for {stamp}"
        raise RuntimeError(msg)

    def _expire(self, keep: int) -> None:
        if not self.root.is_dir():
            return
        snapshots = sorted(
            p for p in self.root.iterdir()
            if _SNAPSHOT_ID.match(p.name) and p.is_dir() and not p.is_symlink()
        )  # fmt: skip
        for old in snapshots[: max(0, len(snapshots) - keep)]:
            shutil.rmtree(old)

    def resolve(self, snapshot_id: str, name: str) -> Path | None:
        """The file of an existing snapshot, or None; ids and names are never paths."""
        if not _SNAPSHOT_ID.match(snapshot_id) or name != EVENT_LOG_FILE:
            return None
        path = self.root / snapshot_id / name
        return path if path.is_file() else None
