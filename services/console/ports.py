"""Ports of the console: the Protocols and value types app.py needs from the outside."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.console.core.events import Event, Source


class Clock(Protocol):
    """Wall-clock time (UTC)."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware."""
        ...


class Logger(Protocol):
    """The subset of a structlog logger the app uses."""

    def warning(self, event: str, **kw: object) -> object:
        """Log a warning."""
        ...


class Projection(Protocol):
    """The console's own store of projected events and its stream positions."""

    async def apply(self, durable: str, events: Sequence[Event], last_seq: int) -> list[Event]:
        """Insert new events and the position in one transaction; return those that were new."""
        ...

    async def position(self, durable: str) -> int:
        """The last stream sequence committed for `durable` (0 before the first)."""
        ...

    async def counts(self) -> dict[str, int]:
        """How many events of each source are projected."""
        ...

    async def events(
        self,
        *,
        sources: Sequence[Source],
        participant_id: str | None = None,
        signal_id: str | None = None,
    ) -> list[Event]:
        """Projected events of these sources, optionally of one participant or signal."""
        ...


@dataclass(frozen=True, slots=True)
class Change:
    """What just arrived, for live pages: which kinds, and which sites they concern."""

    sources: frozenset[str]
    sites: frozenset[str]


class Changes(Protocol):
    """Tells the live pages that the projection moved."""

    def publish(self, change: Change) -> None:
        """Hand the change to every listener (never blocks)."""
        ...


@dataclass(frozen=True, slots=True)
class AckOutcome:
    """Notify's answer to an acknowledgement: its HTTP status and what to tell the user."""

    status: int
    message: str


class Acknowledgements(Protocol):
    """Notify's acknowledgement, asked as the viewer's own token (notify writes its file)."""

    async def acknowledge(
        self, signal_id: str, *, token: str, reason: str, assign_to: str | None = None
    ) -> AckOutcome:
        """Ask notify to record the acknowledgement (taken by `assign_to` when named)."""
        ...
