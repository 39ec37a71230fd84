"""In-memory RulesStore (adapters layer): same contract as the DuckDB store, for dev and tests."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from uuid import UUID

from schemas import SignalUpdated
from services.rules.core.engine import StateKey
from services.rules.core.errors import AlreadyProcessedError
from services.rules.core.state import ParticipantState
from services.rules.ports import Commit, ConfigActivation, ConfigRecord, DeadLetter, OutboxRow


class InMemoryRulesStore:
    """Tracking, states, outbox, dead letters and config history; a commit is all-or-nothing."""

    def __init__(
        self,
        *,
        signal_subject: str = "safetymon.rules.signal_raised.v1",
        updated_subject: str = "safetymon.rules.signal_updated.v1",
    ) -> None:
        self._subject = signal_subject
        self._updated_subject = updated_subject
        self._tracking: set[tuple[str, UUID]] = set()
        self._states: dict[StateKey, ParticipantState] = {}
        self._outbox: dict[UUID, OutboxRow] = {}
        self._published: set[UUID] = set()
        self._dead: dict[UUID, DeadLetter] = {}
        self._configs: dict[int, ConfigRecord] = {}
        self._positions: dict[StateKey, int] = {}
        self._seq = 0

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def processed(self, consumer: str, ids: Collection[UUID]) -> frozenset[UUID]:
        """Return the ids already tracked for `consumer`."""
        return frozenset(i for i in ids if (consumer, i) in self._tracking)

    async def load(self, keys: Collection[StateKey]) -> dict[StateKey, ParticipantState]:
        """Return the stored states of `keys` (a new dict the caller may change)."""
        return {key: self._states[key] for key in keys if key in self._states}

    async def open_clocks(self, trial_id: str) -> frozenset[StateKey]:
        """Keys of the trial's states with an open report clock (SAE-02 or SUSAR-01)."""
        return frozenset(
            key
            for key, state in self._states.items()
            if key[0] == trial_id and state.has_open_clock
        )

    async def positions(self, keys: Collection[StateKey]) -> dict[StateKey, int]:
        """The committed log position of each key that has one."""
        return {key: self._positions[key] for key in keys if key in self._positions}

    async def max_position(self) -> int | None:
        """The highest position recorded for any participant."""
        return max(self._positions.values(), default=None)

    async def commit(self, batch: Commit) -> None:
        """Apply the batch atomically; refuse it whole when any tracking row exists."""
        rows = [(batch.consumer, i) for i in batch.tracking]
        if len(set(rows)) < len(rows) or any(row in self._tracking for row in rows):
            raise AlreadyProcessedError(f"{batch.consumer}: batch holds processed inputs")
        activation = batch.activation
        if activation is not None and activation.from_seq in self._configs:
            # The DuckDB store's primary key refuses it too: one configuration per position.
            raise AlreadyProcessedError(f"a configuration is recorded at {activation.from_seq}")
        if activation is not None:
            self._configs[activation.from_seq] = ConfigRecord(activation, datetime.now(UTC))
        self._tracking.update(rows)
        self._states.update({state.key: state for state in batch.states})
        for key, seq in batch.positions:
            self._positions[key] = max(seq, self._positions.get(key, seq))
        for signal in batch.signals:
            if signal.event_id not in self._outbox:
                self._seq += 1
                body = signal.model_dump_json().encode()
                subject = (
                    self._updated_subject if isinstance(signal, SignalUpdated) else self._subject
                )
                self._outbox[signal.event_id] = OutboxRow(signal.event_id, self._seq, subject, body)
        for letter in batch.dead_letters:
            self._dead.setdefault(letter.dead_letter_id, letter)

    async def active_config(self) -> ConfigActivation | None:
        """The newest recorded configuration activation."""
        history = await self.config_history()
        return history[-1].activation if history else None

    async def config_history(self) -> list[ConfigRecord]:
        """Every recorded activation, by `from_seq`."""
        return [self._configs[seq] for seq in sorted(self._configs)]

    async def unpublished(self, *, limit: int) -> list[OutboxRow]:
        """Oldest unpublished rows first."""
        rows = sorted(
            (row for row in self._outbox.values() if row.signal_id not in self._published),
            key=lambda row: row.seq,
        )
        return rows[:limit]

    async def mark_published(self, signal_ids: Sequence[UUID]) -> None:
        """Remember these signals as published."""
        self._published.update(i for i in signal_ids if i in self._outbox)

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """Dead letters in the order they were committed (most recent last)."""
        return list(self._dead.values())[-limit:]
