"""What the ingest use-cases need from the outside world."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, TypeAlias
from uuid import UUID

from services.ingest.core.chain import Entry, LogHead
from services.ingest.core.dedupe import DedupeKey, Known

#: A JSON value, as `json.loads` returns it.
JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None
#: A fact's JSON wire form: `model_dump(mode="json")` of a schemas fact, with the envelope
#: ingest assigns (event id, recorded_at, actor) and units normalised; what the log hashes.
FactWire: TypeAlias = dict[str, JsonValue]


class EventLog(Protocol):
    """The hash-chained, append-only log (the ingest service's own DuckDB file)."""

    async def existing(self, keys: Sequence[DedupeKey]) -> dict[DedupeKey, Known]:
        """Logged facts (event id and stored content) under these scoped dedupe keys."""
        ...

    async def describe(self, event_ids: Sequence[UUID]) -> dict[UUID, tuple[str, str]]:
        """(event_type, participant_id) of logged events, for corrections."""
        ...

    async def enrolment_sites(self, participant_ids: Sequence[str]) -> dict[str, frozenset[str]]:
        """The sites each of these participants is enrolled at (participant_enrolled facts)."""
        ...

    async def append(self, wires: Sequence[FactWire]) -> list[Entry]:
        """Chain and append facts in one transaction; all or nothing."""
        ...

    async def read_after(self, seq: int, limit: int) -> list[Entry]:
        """Entries with seq > `seq`, in order."""
        ...

    async def head(self) -> LogHead:
        """The last entry's position and hash."""
        ...

    async def published_position(self) -> int:
        """Highest seq JetStream has confirmed."""
        ...

    async def mark_published(self, seq: int) -> None:
        """Record that every entry up to `seq` is confirmed by JetStream."""
        ...


class Publisher(Protocol):
    """Confirmed publishing of log entries (Nats-Msg-Id = event id)."""

    async def publish(self, entries: Sequence[Entry]) -> None:
        """Return only when the broker has stored every entry."""
        ...


class Clock(Protocol):
    """Source of recorded_at: when safetymon learned a fact."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class HeadAnchor(Protocol):
    """Heads of the log published outside its file, where a rewrite of the file cannot reach."""

    async def latest(self) -> LogHead | None:
        """The last head published (None when none was)."""
        ...

    async def publish(self, head: LogHead, published_at: datetime) -> None:
        """Publish a head; returns once it is stored."""
        ...
