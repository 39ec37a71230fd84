"""The hash-chained log in the ingest service's own DuckDB file (one writer thread)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, TypeVar
from uuid import UUID

import duckdb
import pyarrow as pa

from kit.duckdb_worker import DuckDBWorker, transaction
from kit.files import file_sha256
from schemas import GENESIS_HASH
from schemas.snapshots import FileReport
from services.ingest.adapters.audit_export import copy_event_log
from services.ingest.core.chain import Entry, LogHead, chain
from services.ingest.core.dedupe import DedupeKey, Known
from services.ingest.core.errors import LogIntegrityError, TransientError
from services.ingest.core.integrity import TailRow, anchor_problem, tail_problem
from services.ingest.ports import FactWire

T = TypeVar("T")

_EVENT_LOG_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    seq BIGINT PRIMARY KEY,
    event_id UUID NOT NULL UNIQUE,
    event_type VARCHAR NOT NULL,
    trial_id VARCHAR NOT NULL,
    site_id VARCHAR,
    participant_id VARCHAR,
    occurred_at TIMESTAMPTZ NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    source VARCHAR NOT NULL,
    source_ref VARCHAR NOT NULL,
    content VARCHAR NOT NULL,
    prev_hash VARCHAR NOT NULL,
    hash VARCHAR NOT NULL,
    UNIQUE (trial_id, site_id, source, source_ref)
);
"""
#: The dedupe key (core/dedupe.py) is scoped by trial and site. Files written before that
#: have UNIQUE (source, source_ref), which would refuse a second site's record under the
#: same source_ref: `_migrate_dedupe_key` rebuilds such a table once, row for row. (A NULL
#: site_id, clock ticks only, is not held by the constraint; ingest's own lookup is.)
SCHEMA = (
    _EVENT_LOG_TABLE.format(name="event_log")
    + """
CREATE TABLE IF NOT EXISTS relay_position (name VARCHAR PRIMARY KEY, seq BIGINT NOT NULL);
INSERT OR IGNORE INTO relay_position VALUES ('jetstream', 0);
"""
)

#: Defence in depth (the hash chain and the published heads are the tamper evidence): the
#: log refuses UPDATE and DELETE, as notify's audit trail does. relay_position is a
#: separate table, so the relay still moves its position.
_APPEND_ONLY = """
CREATE TABLE IF NOT EXISTS append_only_guard (never_written VARCHAR);
CREATE TRIGGER IF NOT EXISTS event_log_no_update BEFORE UPDATE ON event_log
    FOR EACH STATEMENT INSERT INTO append_only_guard SELECT error('event_log is append-only');
CREATE TRIGGER IF NOT EXISTS event_log_no_delete BEFORE DELETE ON event_log
    FOR EACH STATEMENT INSERT INTO append_only_guard SELECT error('event_log is append-only');
"""
#: Entries whose chain ingest re-checks at every start (the whole chain is `audit verify`'s).
TAIL_ENTRIES = 1000
#: Columns ingest decides on (site check, dedupe, corrections, the relay's subject), each
#: compared with the hashed content it copies; the list form parses each document once.
_DECIDED: Final = (
    "event_id", "event_type", "trial_id", "site_id", "participant_id", "source", "source_ref",
)  # fmt: skip
_COLUMN_MISMATCHES: Final = (
    "SELECT min(seq) FROM (SELECT json_extract_string(content, ["
    + ", ".join(f"'$.{c}'" for c in _DECIDED)
    + "]) AS v, * FROM event_log) WHERE "
    + " OR ".join(f"v[{i}] IS DISTINCT FROM {c}::VARCHAR" for i, c in enumerate(_DECIDED, 1))
)

_COLUMNS = (
    "seq, event_id, event_type, trial_id, site_id, participant_id, occurred_at, recorded_at,"
    " source, source_ref, content, prev_hash, hash"
)


_CAST = (
    "seq, event_id::UUID, event_type, trial_id, site_id, participant_id,"
    " occurred_at::TIMESTAMPTZ, recorded_at::TIMESTAMPTZ, source, source_ref, content,"
    " prev_hash, hash"
)


class DuckDBEventLog:
    """EventLog on DuckDB: batch appends as one Arrow insert inside one transaction."""

    def __init__(self, path: Path) -> None:
        self._db = DuckDBWorker(path)
        self._head: LogHead | None = None

    def open(self) -> None:
        """Open the file (this process becomes its only writer)."""
        try:
            self._db.open(SCHEMA)
        except duckdb.IOException as exc:
            msg = f"cannot open {self._db.path}: is another ingest process using it? ({exc})"
            raise TransientError(msg) from exc
        self._db.run_sync(_migrate_dedupe_key)
        self._db.run_sync(lambda con: con.execute(_APPEND_ONLY))
        self._head = self._db.run_sync(_read_head)
        problem = self._db.run_sync(_integrity_problem)
        if problem is not None:
            self._db.close()
            raise LogIntegrityError(f"{self._db.path}: {problem}")

    def check_anchor(self, anchor: LogHead) -> None:
        """Refuse a log that no longer holds a head published earlier (before any append).

        Raises:
            LogIntegrityError: the entry at the anchored seq is gone or hashes differently.

        """
        rows = self._db.run_sync(
            lambda con: con.execute(
                "SELECT hash FROM event_log WHERE seq = ?", [anchor.seq]
            ).fetchall()
        )
        stored = str(rows[0][0]) if rows else None
        problem = anchor_problem(anchor, stored=stored, head=self._head or LogHead(0, GENESIS_HASH))
        if problem is not None:
            raise LogIntegrityError(f"{self._db.path}: {problem}")

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    async def existing(self, keys: Sequence[DedupeKey]) -> dict[DedupeKey, Known]:
        """Logged facts (event id, stored content) under these scoped dedupe keys."""
        if not keys:
            return {}
        names = ("trial_id", "site_id", "source", "source_ref")
        table = pa.table({name: [k[i] for k in keys] for i, name in enumerate(names)})

        def query(con: duckdb.DuckDBPyConnection) -> dict[DedupeKey, Known]:
            con.register("wanted_keys", table)
            try:
                rows = con.execute(
                    "SELECT e.trial_id, e.site_id, e.source, e.source_ref, e.event_id, e.content"
                    " FROM event_log e JOIN wanted_keys w ON e.trial_id = w.trial_id"
                    " AND e.site_id IS NOT DISTINCT FROM w.site_id"
                    " AND e.source = w.source AND e.source_ref = w.source_ref"
                ).fetchall()
            finally:
                con.unregister("wanted_keys")
            return {(r[0], r[1], r[2], r[3]): Known(r[4], r[5].encode("utf-8")) for r in rows}

        return await self._run(query)

    async def describe(self, event_ids: Sequence[UUID]) -> dict[UUID, tuple[str, str]]:
        """(event_type, participant_id) of logged events."""
        if not event_ids:
            return {}

        def query(con: duckdb.DuckDBPyConnection) -> dict[UUID, tuple[str, str]]:
            rows = con.execute(
                "SELECT event_id, event_type, participant_id FROM event_log"
                " WHERE event_id IN (SELECT unnest(?::UUID[]))",
                [[str(i) for i in event_ids]],
            ).fetchall()
            return {row[0]: (row[1], row[2]) for row in rows}

        return await self._run(query)

    async def enrolment_sites(self, participant_ids: Sequence[str]) -> dict[str, frozenset[str]]:
        """Sites of each participant's enrolments, from the log's own columns (no projection)."""
        if not participant_ids:
            return {}

        def query(con: duckdb.DuckDBPyConnection) -> dict[str, frozenset[str]]:
            rows = con.execute(
                "SELECT participant_id, list(DISTINCT site_id) FROM event_log"
                " WHERE event_type = 'participant_enrolled'"
                " AND participant_id IN (SELECT unnest(?::VARCHAR[]))"
                " GROUP BY participant_id",
                [list(participant_ids)],
            ).fetchall()
            return {row[0]: frozenset(row[1]) for row in rows}

        return await self._run(query)

    async def append(self, wires: Sequence[FactWire]) -> list[Entry]:
        """Chain after the head and insert every fact in one transaction."""
        head = self._head or LogHead(0, GENESIS_HASH)

        def insert(con: duckdb.DuckDBPyConnection) -> list[Entry]:
            # Hashing a large batch takes a while: on the writer thread, not the event loop
            # (the HTTP API must stay responsive, /health included).
            entries = chain(wires, head)
            table = _arrow(wires, entries)

            def body() -> None:
                con.register("new_entries", table)
                try:
                    con.execute(
                        f"INSERT INTO event_log ({_COLUMNS}) SELECT {_CAST} FROM new_entries"
                    )
                finally:
                    con.unregister("new_entries")

            transaction(con, body)
            return entries

        entries = await self._run(insert)
        self._head = LogHead(entries[-1].seq, entries[-1].hash)
        return entries

    async def read_after(self, seq: int, limit: int) -> list[Entry]:
        """Entries after `seq`, in order."""

        def query(con: duckdb.DuckDBPyConnection) -> list[Entry]:
            rows = con.execute(
                "SELECT seq, event_id, event_type, source, source_ref, content, prev_hash, hash"
                " FROM event_log WHERE seq > ? ORDER BY seq LIMIT ?",
                [seq, limit],
            ).fetchall()
            return [
                Entry(r[0], r[1], r[2], r[3], r[4], r[5].encode("utf-8"), r[6], r[7]) for r in rows
            ]

        return await self._run(query)

    async def head(self) -> LogHead:
        """Last position and hash."""
        return self._head or LogHead(0, GENESIS_HASH)

    async def published_position(self) -> int:
        """Highest seq JetStream confirmed."""

        def query(con: duckdb.DuckDBPyConnection) -> int:
            # fetchall, not fetchone: DuckDB 2.0 refuses the next statement on this connection
            # while a result is half-read (a clock tick's lookup failed after this query).
            rows = con.execute("SELECT seq FROM relay_position WHERE name = 'jetstream'").fetchall()
            return int(rows[0][0]) if rows else 0

        return await self._run(query)

    async def mark_published(self, seq: int) -> None:
        """Advance the confirmed position."""
        await self._run(
            lambda con: con.execute(
                "UPDATE relay_position SET seq = ? WHERE name = 'jetstream' AND seq < ?", [seq, seq]
            )
        )

    async def export_snapshot(self, directory: Path) -> FileReport:
        """Write the log to `<directory>/event_log.parquet` on the writer thread.

        Returns the file's path, rows, sha256 and chain summary; the file is hashed off the
        writer thread so appends wait only for the COPY.
        """
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        summary = await self._run(lambda con: copy_event_log(con, directory))
        sha256 = await asyncio.to_thread(file_sha256, Path(summary["path"]))
        return {**summary, "sha256": sha256}

    async def _run(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        try:
            return await self._db.run(fn)
        except duckdb.ConstraintException:
            raise
        except duckdb.Error as exc:
            raise TransientError(f"DuckDB: {type(exc).__name__}") from exc


def _migrate_dedupe_key(con: duckdb.DuckDBPyConnection) -> None:
    """Rebuild an event_log keyed on (source, source_ref) alone; a no-op once done.

    DuckDB cannot drop a constraint, so the rows are copied as they are (same seq, ids,
    content and hashes: the chain verifies as before) into a table with the scoped key,
    which replaces the old one in the same transaction.
    """
    old = con.execute(
        "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'event_log'"
        " AND constraint_type = 'UNIQUE' AND constraint_column_names = ['source', 'source_ref']"
    ).fetchall()
    if not old[0][0]:
        return

    def body() -> None:
        con.execute(_EVENT_LOG_TABLE.format(name="event_log_scoped"))
        con.execute(
            f"INSERT INTO event_log_scoped ({_COLUMNS})"
            f" SELECT {_COLUMNS} FROM event_log ORDER BY seq"
        )
        con.execute("DROP TABLE event_log")
        con.execute("ALTER TABLE event_log_scoped RENAME TO event_log")

    transaction(con, body)


def _integrity_problem(con: duckdb.DuckDBPyConnection) -> str | None:
    """The first problem of the chain's tail or of any decided column, or None."""
    ((count,),) = con.execute("SELECT count(*) FROM event_log").fetchall()
    rows = con.execute(
        "SELECT seq, content, prev_hash, hash FROM event_log ORDER BY seq DESC LIMIT ?",
        [TAIL_ENTRIES + 1],
    ).fetchall()
    rows.reverse()
    before = str(rows[0][3]) if len(rows) > TAIL_ENTRIES else None
    tail = [TailRow(int(r[0]), r[1].encode("utf-8"), r[2], r[3]) for r in rows[-TAIL_ENTRIES:]]
    problem = tail_problem(tail, count=int(count), before=before)
    if problem is not None:
        return problem
    ((edited,),) = con.execute(_COLUMN_MISMATCHES).fetchall()
    if edited is not None:
        return f"a column of entry {edited} differs from its hashed content: it was edited"
    return None


def _read_head(con: duckdb.DuckDBPyConnection) -> LogHead:
    rows = con.execute("SELECT seq, hash FROM event_log ORDER BY seq DESC LIMIT 1").fetchall()
    return LogHead(int(rows[0][0]), str(rows[0][1])) if rows else LogHead(0, GENESIS_HASH)


def _arrow(wires: Sequence[FactWire], entries: Sequence[Entry]) -> pa.Table:
    return pa.table(
        {
            "seq": pa.array([e.seq for e in entries], pa.int64()),
            "event_id": [str(e.event_id) for e in entries],
            "event_type": [e.event_type for e in entries],
            "trial_id": [w["trial_id"] for w in wires],
            "site_id": [w.get("site_id") for w in wires],
            "participant_id": [w.get("participant_id") for w in wires],
            "occurred_at": [w["occurred_at"] for w in wires],
            "recorded_at": [w["recorded_at"] for w in wires],
            "source": [e.source for e in entries],
            "source_ref": [e.source_ref for e in entries],
            "content": [e.content.decode("utf-8") for e in entries],
            "prev_hash": [e.prev_hash for e in entries],
            "hash": [e.hash for e in entries],
        }
    )
