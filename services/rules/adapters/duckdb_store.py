"""DuckDB RulesStore (adapters layer): tracking, states, outbox, dead letters, config history.

This process owns the file (one writer), so participant states are cached in memory after
the first read. Every batch is one transaction; multi-row writes go through registered Arrow
tables (`INSERT ... SELECT`), never row-by-row `executemany`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import duckdb
import pyarrow as pa

from kit.duckdb_worker import DuckDBWorker, transaction
from kit.files import file_sha256
from services.rules.adapters._duckdb_sql import (
    DEAD_LETTER_COLUMNS,
    SCHEMA,
    batch_tables,
    max_seqs,
    read_config_history,
    row_to_dead_letter,
    with_table,
    write,
)
from services.rules.adapters.audit_export import copy_rules_snapshot
from services.rules.core.engine import StateKey
from services.rules.core.errors import AlreadyProcessedError, TransientError
from services.rules.core.state import ParticipantState
from services.rules.ports import Commit, ConfigActivation, ConfigRecord, DeadLetter, OutboxRow

T = TypeVar("T")


class DuckDBRulesStore:
    """The rules service's own DuckDB file behind the RulesStore port."""

    def __init__(
        self, path: Path, *, signal_subject: str, updated_subject: str | None = None
    ) -> None:
        self.path = path
        self._subject = signal_subject
        # Retractions (SignalUpdated) go on their own subject; the signals stream holds both.
        self._updated_subject = updated_subject or signal_subject
        self._worker: DuckDBWorker | None = None
        self._cache: dict[StateKey, ParticipantState] = {}
        self._outbox_seq = 0
        self._dead_seq = 0
        self._active: ConfigActivation | None = None
        self._positions: dict[StateKey, int] = {}

    async def open(self) -> None:
        """Open (or create) the file and its tables; read the sequence counters."""
        worker = DuckDBWorker(self.path)
        try:
            await asyncio.to_thread(worker.open, SCHEMA)
        except duckdb.Error as exc:
            raise TransientError(f"cannot open {self.path.name}: {type(exc).__name__}") from exc
        self._worker = worker
        self._outbox_seq, self._dead_seq = await self._run(max_seqs)
        history = await self.config_history()
        self._active = history[-1].activation if history else None
        rows = await self._run(
            lambda con: con.execute(
                "SELECT trial_id, participant_id, seq FROM participant_position"
            ).fetchall()
        )
        self._positions = {(row[0], row[1]): int(row[2]) for row in rows}

    async def close(self) -> None:
        """Checkpoint and close the file; safe to call twice."""
        worker, self._worker = self._worker, None
        self._cache.clear()
        self._positions.clear()
        if worker is not None:
            await asyncio.to_thread(worker.close)

    async def processed(self, consumer: str, ids: Collection[UUID]) -> frozenset[UUID]:
        """Return the ids already tracked for `consumer`."""
        if not ids:
            return frozenset()
        table = pa.table({"event_id": [str(i) for i in ids]})
        sql = (
            "SELECT t.event_id FROM tracking t JOIN {ids} n"
            " ON t.event_id = CAST(n.event_id AS UUID) WHERE t.consumer = ?"
        )
        rows = await self._run(lambda con: with_table(con, table, sql, [consumer]))
        return frozenset(row[0] for row in rows)

    async def load(self, keys: Collection[StateKey]) -> dict[StateKey, ParticipantState]:
        """Return the stored states of `keys` from the cache, reading missing ones once."""
        missing = [key for key in keys if key not in self._cache]
        if missing:
            table = pa.table(
                {"trial_id": [k[0] for k in missing], "participant_id": [k[1] for k in missing]}
            )
            sql = (
                "SELECT s.state FROM participant_state s JOIN {ids} k"
                " ON s.trial_id = k.trial_id AND s.participant_id = k.participant_id"
            )
            rows = await self._run(lambda con: with_table(con, table, sql, []))
            for (text,) in rows:
                state = ParticipantState.from_json(text)
                self._cache[state.key] = state
        return {key: self._cache[key] for key in keys if key in self._cache}

    async def open_clocks(self, trial_id: str) -> frozenset[StateKey]:
        """Keys of the trial's states with an open SAE-02 clock (a JSON key, set only then)."""
        sql = (
            "SELECT trial_id, participant_id FROM participant_state"
            " WHERE trial_id = ? AND json_exists(state, '$.sae_clocks')"
        )
        rows = await self._run(lambda con: con.execute(sql, [trial_id]).fetchall())
        return frozenset((row[0], row[1]) for row in rows)

    async def positions(self, keys: Collection[StateKey]) -> dict[StateKey, int]:
        """The committed position of each key (kept in memory: one writer, one row a key)."""
        return {key: self._positions[key] for key in keys if key in self._positions}

    async def max_position(self) -> int | None:
        """The highest position recorded for any participant."""
        return max(self._positions.values(), default=None)

    async def commit(self, batch: Commit) -> None:
        """Write tracking, states, outbox rows and dead letters in one transaction."""
        signals = list({s.event_id: s for s in batch.signals}.values())
        tables = batch_tables(
            batch,
            signals,
            subjects=(self._subject, self._updated_subject),
            outbox_seq=self._outbox_seq,
            dead_seq=self._dead_seq,
        )
        activation = batch.activation
        await self._run(lambda con: transaction(con, lambda: write(con, tables, activation)))
        if activation is not None and (
            self._active is None or activation.from_seq > self._active.from_seq
        ):
            self._active = activation
        self._outbox_seq += len(signals)
        self._dead_seq += len(batch.dead_letters)
        self._cache.update({state.key: state for state in batch.states})
        for key, seq in batch.positions:
            self._positions[key] = max(seq, self._positions.get(key, seq))

    async def active_config(self) -> ConfigActivation | None:
        """The newest recorded activation (by `from_seq`), kept in memory: one writer."""
        if self._worker is None:
            raise TransientError(f"{self.path.name} is not open")
        return self._active

    async def config_history(self) -> list[ConfigRecord]:
        """Every recorded activation, by `from_seq`."""
        return await self._run(read_config_history)

    async def unpublished(self, *, limit: int) -> list[OutboxRow]:
        """Oldest unpublished rows first."""
        sql = (
            "SELECT signal_id, seq, subject, body FROM signal_outbox"
            " WHERE published_at IS NULL ORDER BY seq LIMIT ?"
        )
        rows = await self._run(lambda con: con.execute(sql, [limit]).fetchall())
        return [OutboxRow(row[0], row[1], row[2], bytes(row[3])) for row in rows]

    async def mark_published(self, signal_ids: Sequence[UUID]) -> None:
        """Stamp the rows as published in one UPDATE."""
        if not signal_ids:
            return
        table = pa.table({"signal_id": [str(i) for i in signal_ids]})
        sql = (
            "UPDATE signal_outbox SET published_at = now() WHERE published_at IS NULL"
            " AND signal_id IN (SELECT CAST(signal_id AS UUID) FROM {ids})"
        )
        await self._run(lambda con: with_table(con, table, sql, []))

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """Return the `limit` most recent dead letters, oldest first."""
        sql = f"SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters ORDER BY seq DESC LIMIT ?"
        rows = await self._run(lambda con: con.execute(sql, [limit]).fetchall())
        return [row_to_dead_letter(row) for row in reversed(rows)]

    async def export_snapshot(self, directory: Path) -> dict[str, Any]:
        """Write signals.parquet and rules_config_history.parquet into `directory` (audit).

        Both are copied on the writer thread in one transaction: they describe one moment.
        """
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        reports = await self._run(lambda con: copy_rules_snapshot(con, directory))
        for report in reports.values():
            # Hashed off the writer thread: the service goes on committing meanwhile.
            report["sha256"] = await asyncio.to_thread(file_sha256, Path(report["path"]))
        return reports

    async def _run(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        if self._worker is None:
            raise TransientError(f"{self.path.name} is not open")
        try:
            return await self._worker.run(fn)
        except duckdb.ConstraintException as exc:
            raise AlreadyProcessedError(f"constraint: {type(exc).__name__}") from exc
        except duckdb.Error as exc:
            raise TransientError(f"duckdb: {type(exc).__name__}") from exc
