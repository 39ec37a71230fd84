"""Read models of the notify service (app layer): what the outbox, the trail and the alerts say.

Answered through the owning service only (one writer per DuckDB file): in-process callers
(the runner, the demo, tests) and the NATS request/reply answers (`state`, `flushed`) read
here, never the file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict
from uuid import UUID

from services.notify.core.audit import AuditEntry, ChainCheck, verify_chain
from services.notify.ports import (
    Clock,
    DeadLetter,
    DeliveryLogRow,
    NotificationRow,
    OpenAlert,
    ReadStore,
)


class OpenAlertRef(TypedDict):
    """An open U0 alert, by its signal and the Message-ID of its first email."""

    signal_id: str
    message_id: str


class StateAnswer(TypedDict):
    """The `state` answer: what a supervising process waits on before it stops."""

    unsent: int
    open_alerts: list[OpenAlertRef]


class FlushedAnswer(TypedDict):
    """The `flushed` answer: how many held digest rows were made due."""

    moved: int


class NotifyQueries:
    """The read side of notify over its store; `flush_digests` is its one command."""

    def __init__(
        self, store: ReadStore, *, clock: Clock, on_flushed: Callable[[], None] | None = None
    ) -> None:
        self._store = store
        self._clock = clock
        #: Called when a flush made digests due (the service wakes its sender).
        self._on_flushed = on_flushed

    async def notifications(self, signal_id: UUID | str | None = None) -> list[NotificationRow]:
        """Return the outbox rows (all, or one signal's)."""
        wanted = UUID(str(signal_id)) if signal_id is not None else None
        return await self._store.notifications(wanted)

    async def delivery_log(
        self, *, signal_id: UUID | None = None, participant_id: str | None = None
    ) -> list[DeliveryLogRow]:
        """Every attempt, reply, acknowledgement and escalation of a signal or participant."""
        return await self._store.delivery_log(signal_id=signal_id, participant_id=participant_id)

    async def flush_digests(self) -> int:
        """Send every held digest now instead of at its scheduled time; return rows moved."""
        moved = await self._store.flush_digests(at=self._clock.now())
        if moved and self._on_flushed is not None:
            self._on_flushed()
        return moved

    async def open_alerts(self) -> list[OpenAlert]:
        """Unacknowledged open U0 alerts, oldest first (the demo's duty officer reads these)."""
        return await self._store.open_alerts()

    async def unsent_count(self) -> int:
        """Count notifications still intended and unconfirmed (the runner's "settled" check)."""
        return await self._store.unsent_count()

    async def dead_letters(self) -> list[DeadLetter]:
        """Return deliveries that were not valid signals (kept for a human to look at)."""
        return await self._store.dead_letters()

    async def audit_entries(self) -> list[AuditEntry]:
        """The whole audit trail in seq order."""
        return await self._store.audit_entries()

    async def verify_audit(self) -> ChainCheck:
        """Verify the notify audit trail's hash chain."""
        return verify_chain(await self._store.audit_entries())

    async def state(self) -> StateAnswer:
        """Read only: unsent notifications and the open U0 alerts with their first email."""
        alerts: list[OpenAlertRef] = [
            {"signal_id": str(a.state.signal_id), "message_id": a.first.message_id}
            for a in await self.open_alerts()
        ]
        return {"unsent": await self.unsent_count(), "open_alerts": alerts}

    async def flushed(self) -> FlushedAnswer:
        """Flush the held digests; the answer says how many rows moved."""
        return {"moved": await self.flush_digests()}
