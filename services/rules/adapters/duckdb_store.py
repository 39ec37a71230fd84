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
from schemas import GENESIS_HASH, LOG_FACT_ADAPTER, ClockTicked
from schemas.snapshots import FileReport
from services.rules.adapters._duckdb_sql import (
    DEAD_LETTER_COLUMNS,
    SCHEMA,
    batch_tables,
    last_signal_hash,
    max_seqs,
    read_config_history,
    row_to_dead_letter,
    with_table,
    write,
)
from services.rules.adapters.audit_export import copy_rules_snapshot
from services.rules.core import engine
from services.rules.core.config import TrialConfig
from services.rules.core.engine import Signal, StateKey
from services.rules.core.errors import AlreadyProcessedError, TransientError
from services.rules.core.state import ParticipantState
from services.rules.core.state_codec import decode_state
from services.rules.ports import (
    Commit,
    ConfigActivation,
    ConfigRecord,
    DeadLetter,
    Folded,
    OutboxRow,
)

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
        #: Hash of the last outbox row, which the next signal chains on (one writer).
        self._signal_head = GENESIS_HASH
        self._active: ConfigActivation | None = None
        self._positions: dict[StateKey, int] = {}
        #: Keys with a snapshot row, and how many journal rows each has past it.
        self._snapshotted: set[StateKey] = set()
        self._journaled: dict[StateKey, int] = {}
        self._journal_ord = 0
        #: (from_seq, configuration) of each recorded activation, to fold a journal again.
        self._timeline: list[tuple[int, TrialConfig]] = []

    async def open(self) -> None:
        """Open (or create) the file and its tables; read the sequence counters."""
        worker = DuckDBWorker(self.path)
        try:
            await asyncio.to_thread(worker.open, SCHEMA)
        except duckdb.Error as exc:
            raise TransientError(f"cannot open {self.path.name}: {type(exc).__name__}") from exc
        self._worker = worker
        self._outbox_seq, self._dead_seq = await self._run(max_seqs)
        self._signal_head = await self._run(last_signal_hash)
        history = await self.config_history()
        self._active = history[-1].activation if history else None
        rows = await self._run(
            lambda con: con.execute(
                "SELECT trial_id, participant_id, seq FROM participant_position"
            ).fetchall()
        )
        self._positions = {(row[0], row[1]): int(row[2]) for row in rows}
        self._snapshotted, self._journaled, self._journal_ord = await self._run(_journal_index)
        self._timeline = [(r.activation.from_seq, _config(r.activation)) for r in history]

    async def close(self) -> None:
        """Checkpoint and close the file; safe to call twice."""
        worker, self._worker = self._worker, None
        self._cache.clear()
        self._positions.clear()
        self._snapshotted.clear()
        self._journaled.clear()
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
        """Return the stored states of `keys` from the cache, reading missing ones once.

        A state read from the file is its snapshot folded with its journal, in order.
        """
        missing = [key for key in keys if key not in self._cache]
        if missing:
            table = pa.table(
                {"trial_id": [k[0] for k in missing], "participant_id": [k[1] for k in missing]}
            )
            snapshots, journal = await self._run(lambda con: _read_states(con, table))
            states = {}
            for text in snapshots:
                state = decode_state(text)
                states[state.key] = state
            for key, rows in journal.items():
                folded = self._refold(states.get(key), key, rows)
                if folded is not None:
                    states[key] = folded
            self._cache.update(states)
        return {key: self._cache[key] for key in keys if key in self._cache}

    def _refold(
        self, state: ParticipantState | None, key: StateKey, rows: list[tuple[int, bool, bytes]]
    ) -> ParticipantState | None:
        """Fold journaled inputs again, each under the configuration live at its position."""
        for seq, tick, body in rows:
            config = self._config_at(seq)
            item = LOG_FACT_ADAPTER.validate_json(body)
            if tick and isinstance(item, ClockTicked):
                if state is not None:
                    changed, _ = engine.evaluate_tick({key: state}, item, config)
                    state = changed.get(key, state)
            elif not isinstance(item, ClockTicked):
                state = engine.evaluate_guarded(state, item, config).state or state
        return state

    def _config_at(self, seq: int) -> TrialConfig | None:
        chosen = self._timeline[0][1] if self._timeline else None
        for from_seq, config in self._timeline:
            if from_seq > seq:
                break
            chosen = config
        return chosen

    async def open_clocks(self, trial_id: str) -> frozenset[StateKey]:
        """Keys of the trial's states with an open report clock (SAE-02 or SUSAR-01).

        `participant_clock` says so for every state written since it exists; a state written
        before (its snapshot is current) says so by its JSON key, set only then.
        """
        sql = (
            "SELECT trial_id, participant_id FROM participant_clock WHERE trial_id = ? AND open"
            " UNION SELECT s.trial_id, s.participant_id FROM participant_state s"
            " ANTI JOIN participant_clock c"
            " ON s.trial_id = c.trial_id AND s.participant_id = c.participant_id"
            " WHERE s.trial_id = ? AND (json_exists(s.state, '$.sae_clocks')"
            " OR json_exists(s.state, '$.susar_clocks'))"
        )
        rows = await self._run(lambda con: con.execute(sql, [trial_id, trial_id]).fetchall())
        return frozenset((row[0], row[1]) for row in rows)

    async def positions(self, keys: Collection[StateKey]) -> dict[StateKey, int]:
        """The committed position of each key (kept in memory: one writer, one row a key)."""
        return {key: self._positions[key] for key in keys if key in self._positions}

    async def max_position(self) -> int | None:
        """The highest position recorded for any participant."""
        return max(self._positions.values(), default=None)

    async def commit(self, batch: Commit) -> None:
        """Write tracking, states, outbox rows and dead letters in one transaction.

        A changed state is written whole (a snapshot) when it is new, when its inputs cannot
        be journaled, or when its journal has grown past a share of its history; otherwise
        only the inputs folded into it are appended. So the bytes a commit writes grow with
        what is new, and a snapshot's cost is spread over the inputs since the last one.
        """
        signals = await self._new_signals(batch)
        snapshots, journal, journaled = self._plan_writes(batch)
        tables = batch_tables(
            batch,
            signals,
            subjects=(self._subject, self._updated_subject),
            outbox_seq=self._outbox_seq,
            dead_seq=self._dead_seq,
            signal_head=self._signal_head,
            snapshots=snapshots,
            journal=journal,
        )
        activation = batch.activation
        await self._run(lambda con: transaction(con, lambda: write(con, tables, activation)))
        if activation is not None and (
            self._active is None or activation.from_seq > self._active.from_seq
        ):
            self._active = activation
        if activation is not None:
            self._timeline.append((activation.from_seq, _config(activation)))
            self._timeline.sort(key=lambda pair: pair[0])
        # Only after the transaction: a failed commit leaves the chain where it was.
        self._outbox_seq += len(signals)
        if signals:
            self._signal_head = tables["outbox"].column("hash")[-1].as_py()
        self._dead_seq += len(batch.dead_letters)
        self._journal_ord += len(journal)
        self._cache.update({state.key: state for state in batch.states})
        for state in snapshots:
            self._snapshotted.add(state.key)
            self._journaled.pop(state.key, None)
        self._journaled.update(journaled)
        for key, seq in batch.positions:
            self._positions[key] = max(seq, self._positions.get(key, seq))

    async def _new_signals(self, batch: Commit) -> list[Signal]:
        """The batch's signals without repeats and without those the outbox holds already.

        Left out here rather than skipped by the INSERT's ON CONFLICT: each row is chained on
        the one before, so a row chained but not written would break the chain (and its seq).
        """
        signals = list({s.event_id: s for s in batch.signals}.values())
        if not signals:
            return signals
        table = pa.table({"signal_id": [str(s.event_id) for s in signals]})
        sql = (
            "SELECT signal_id FROM signal_outbox"
            " WHERE signal_id IN (SELECT CAST(signal_id AS UUID) FROM {ids})"
        )
        held = {row[0] for row in await self._run(lambda con: with_table(con, table, sql, []))}
        return [s for s in signals if s.event_id not in held]

    def _plan_writes(
        self, batch: Commit
    ) -> tuple[list[ParticipantState], list[tuple[int, Folded]], dict[StateKey, int]]:
        """Which states are written whole, and the journal rows (with their `ord`) of the rest."""
        inputs: dict[StateKey, list[Folded]] = {}
        for item in batch.folded:
            inputs.setdefault(item.key, []).append(item)
        snapshots: list[ParticipantState] = []
        journal: list[tuple[int, Folded]] = []
        journaled: dict[StateKey, int] = {}
        for state in batch.states:
            mine = inputs.get(state.key, [])
            length = self._journaled.get(state.key, 0) + len(mine)
            if (
                not self._timeline  # no recorded configuration to fold the journal under
                or state.key not in self._snapshotted
                or not mine
                or any(item.seq is None for item in mine)
                or length > _journal_limit(state)
            ):
                snapshots.append(state)
                continue
            for item in mine:
                journal.append((self._journal_ord + len(journal) + 1, item))
            journaled[state.key] = length
        return snapshots, journal, journaled

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

    async def export_snapshot(self, directory: Path) -> dict[str, FileReport]:
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


#: Inputs a participant's journal may hold before its state is written whole again: at least
#: this many, and more as the history grows, so each input pays a bounded share of a snapshot.
_JOURNAL_MIN = 64
_JOURNAL_SHARE = 8


def _journal_limit(state: ParticipantState) -> int:
    history = len(state.observations) + len(state.adverse_events) + len(state.procedures)
    return max(_JOURNAL_MIN, history // _JOURNAL_SHARE)


def _config(activation: ConfigActivation) -> TrialConfig:
    return engine.parse_config(activation.config.toml)


def _journal_index(
    con: duckdb.DuckDBPyConnection,
) -> tuple[set[StateKey], dict[StateKey, int], int]:
    """Keys with a snapshot, journal rows per key, and the highest journal `ord`."""
    snapshotted = {
        (row[0], row[1])
        for row in con.execute("SELECT trial_id, participant_id FROM participant_state").fetchall()
    }
    counts = con.execute(
        "SELECT trial_id, participant_id, count(*) FROM participant_journal GROUP BY ALL"
    ).fetchall()
    ((highest,),) = con.execute("SELECT coalesce(max(ord), 0) FROM participant_journal").fetchall()
    return snapshotted, {(r[0], r[1]): int(r[2]) for r in counts}, int(highest)


def _read_states(
    con: duckdb.DuckDBPyConnection,
    keys: Any,  # noqa: ANN401 - a pyarrow table; pyarrow ships no type information
) -> tuple[list[str], dict[StateKey, list[tuple[int, bool, bytes]]]]:
    """Snapshots of `keys` and their journals, in fold order."""
    snapshots = with_table(
        con,
        keys,
        "SELECT s.state FROM participant_state s JOIN {ids} k"
        " ON s.trial_id = k.trial_id AND s.participant_id = k.participant_id",
        [],
    )
    rows = with_table(
        con,
        keys,
        "SELECT j.trial_id, j.participant_id, j.seq, j.tick, j.body FROM participant_journal j"
        " JOIN {ids} k ON j.trial_id = k.trial_id AND j.participant_id = k.participant_id"
        " ORDER BY j.ord",
        [],
    )
    journal: dict[StateKey, list[tuple[int, bool, bytes]]] = {}
    for row in rows:
        journal.setdefault((row[0], row[1]), []).append((int(row[2]), bool(row[3]), bytes(row[4])))
    return [row[0] for row in snapshots], journal
