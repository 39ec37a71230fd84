"""Ports of the rules service (ports layer): what the use-case needs, as Protocols and records."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from schemas import ClockTicked, SignalRaised
from services.rules.core.engine import Signal, StateKey
from services.rules.core.state import ParticipantState


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message or fact that could not be evaluated; kept for review, never retried blindly.

    `error` holds codes only (exception types, rule ids, field locations), never payload text.
    """

    dead_letter_id: UUID
    consumer: str
    stage: str  # "decode" or "evaluate"
    error: str
    event_id: UUID | None = None
    trial_id: str | None = None
    participant_id: str | None = None
    subject: str | None = None
    stream_seq: int | None = None
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A delivery the edge could not decode: tracked under `tracking_id` like any input."""

    tracking_id: UUID
    dead_letter: DeadLetter
    signal: SignalRaised | None = None


@dataclass(frozen=True, slots=True)
class LaneTick:
    """A clock tick applied to one participant only, at its place in that participant's order.

    The consumer handles participants independently, so a tick reaches each participant in
    the participant's own log order; the tick itself is tracked (and acknowledged) once, when
    it is handled for the whole trial after every earlier fact of the trial.
    """

    tick: ClockTicked
    key: StateKey


@dataclass(frozen=True, slots=True)
class Folded:
    """One input folded into one participant's state (the store journals it).

    A store may keep a participant as a snapshot plus the inputs folded since, and rebuild
    the state by folding them again (the fold is pure), so a commit writes what is new rather
    than the whole history. `body` is the input's JSON (a fact, or a tick with `tick=True`);
    `seq` None (inputs built by hand, never delivered from the log) cannot be journaled.
    """

    key: StateKey
    seq: int | None
    tick: bool
    body: bytes


@dataclass(frozen=True, slots=True)
class ConfigIdentity:
    """The trial configuration a running service evaluates under, as an auditor replays it.

    `toml` is the exact text of the file the service loaded and `sha256` the digest of its
    UTF-8 bytes: two files are the same configuration only when their bytes are equal.
    `rule_versions` are the file's explicit choices (a rule not named runs version 1).
    """

    version: str
    sha256: str
    toml: str
    rule_versions: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class ConfigActivation:
    """A configuration taking effect from log position `from_seq` on (for an as-of replay)."""

    from_seq: int
    config: ConfigIdentity


@dataclass(frozen=True, slots=True)
class ConfigRecord:
    """A recorded activation; `activated_at` is the store's wall clock at its commit."""

    activation: ConfigActivation
    activated_at: datetime


@dataclass(frozen=True, slots=True)
class Commit:
    """Everything one batch changes, written in one transaction.

    `tracking` rows record (consumer, id) for every input; a clash with a committed row
    means the batch (or part of it) was processed already. `activation` is set on the first
    batch evaluated under a configuration other than the newest recorded one, so the
    switch is recorded if and only if the batch evaluated under it is.
    """

    consumer: str
    tracking: tuple[UUID, ...]
    states: tuple[ParticipantState, ...] = ()
    #: The log position each touched participant has been folded up to (facts and ticks).
    positions: tuple[tuple[StateKey, int], ...] = ()
    #: The inputs folded into each changed state, in fold order.
    folded: tuple[Folded, ...] = ()
    signals: tuple[Signal, ...] = ()
    dead_letters: tuple[DeadLetter, ...] = ()
    activation: ConfigActivation | None = None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A committed signal waiting for (or past) publication; `body` is its JSON wire form."""

    signal_id: UUID
    seq: int
    subject: str
    body: bytes


class StateStore(Protocol):
    """Participant states and tracking, committed atomically with the outbox."""

    async def processed(self, consumer: str, ids: Collection[UUID]) -> frozenset[UUID]:
        """Return the subset of `ids` already committed for `consumer`."""
        ...

    async def load(self, keys: Collection[StateKey]) -> dict[StateKey, ParticipantState]:
        """Return the stored state of each key that has one."""
        ...

    async def open_clocks(self, trial_id: str) -> frozenset[StateKey]:
        """Keys of the trial's participants whose committed state has an open SAE-02 clock."""
        ...

    async def positions(self, keys: Collection[StateKey]) -> dict[StateKey, int]:
        """The committed log position of each key that has one."""
        ...

    async def max_position(self) -> int | None:
        """The highest log position folded for any participant (None: none recorded)."""
        ...

    async def active_config(self) -> ConfigActivation | None:
        """The newest recorded configuration activation (None: none recorded yet)."""
        ...

    async def config_history(self) -> list[ConfigRecord]:
        """Every recorded configuration activation, by `from_seq`."""
        ...

    async def commit(self, batch: Commit) -> None:
        """Write tracking, states, outbox, dead letters and activation in one transaction.

        Raises:
            AlreadyProcessedError: a tracking row exists already; nothing was written.
            TransientError: storage is unavailable; nothing was written.

        """
        ...


class SignalOutbox(Protocol):
    """Signals committed but maybe not yet published."""

    async def unpublished(self, *, limit: int) -> list[OutboxRow]:
        """Oldest unpublished rows first (by `seq`)."""
        ...

    async def mark_published(self, signal_ids: Sequence[UUID]) -> None:
        """Record that JetStream stored these signals."""
        ...


class RulesStore(StateStore, SignalOutbox, Protocol):
    """The service's own storage: one file, one writer, opened and closed by main."""

    async def open(self) -> None:
        """Create or open the storage and its schema."""
        ...

    async def close(self) -> None:
        """Flush and release the storage; safe to call twice."""
        ...

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """Most recent dead letters, for review."""
        ...


class EventLog(Protocol):
    """Structured logger (structlog's BoundLogger fits); event names plus ids and codes only.

    What a call returns is ignored (structlog returns whatever its processors made).
    """

    def debug(self, event: str, **kw: object) -> object:
        """Log a detail."""

    def info(self, event: str, **kw: object) -> object:
        """Log a business outcome."""

    def warning(self, event: str, **kw: object) -> object:
        """Log a retry."""

    def error(self, event: str, **kw: object) -> object:
        """Log a permanent failure (e.g. a dead letter)."""
