"""Publish notify's committed audit trail on its JetStream stream (adapters layer).

Notify's facts (intended, sent, failed, acknowledged, escalated) are committed to its own
DuckDB trail first; this relay reads the entries past the last one the stream holds and
publishes them, in trail order, one confirmed publish at a time. So a crash between a commit
and its publish loses nothing (the next start reads the position from the stream and goes
on from there), and no entry is ever stored after a later one is missing.

The position lives in the stream itself (the `Safetymon-Trail-Seq` header of its last
message), so notify's file needs no relay table. Each message's Nats-Msg-Id is the entry's
event id: a republish inside the duplicate window is dropped by JetStream, and consumers
dedupe by event id beyond it. The body is the trail's stored wire form, chain fields
included, so an auditor can verify the chain from the stream alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import nats.errors
import nats.js.errors

from kit.jetstream import Outgoing, ensure_stream, publish_confirmed
from schemas import DUPLICATE_WINDOW_SECONDS, Subjects

if TYPE_CHECKING:
    from nats.js import JetStreamContext

    from services.notify.core.audit import AuditEntry
    from services.notify.ports import Logger, TrailReader

#: Header naming the trail position a message carries; the relay resumes after the last one.
TRAIL_SEQ_HEADER = "Safetymon-Trail-Seq"


def notify_stream_subjects(namespace: str) -> str:
    """The notify stream's subjects: `<ns>.notify.<event type>.v1` only.

    Narrower than `<ns>.notify.>` on purpose: notify's request subjects (`<ns>.notify.ack`,
    `.log`, `.state`, `.audit.snapshot`, ...) must never be captured by the stream, or
    JetStream would answer those requests with a PubAck.
    """
    return Subjects(namespace).notify_subject("*")


async def ensure_notify_stream(js: JetStreamContext, namespace: str) -> None:
    """Create the notify stream (deny delete/purge, like every stream) if it is missing."""
    await ensure_stream(
        js,
        name=Subjects(namespace).notify_stream,
        subjects=notify_stream_subjects(namespace),
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
    )


class TrailRelay:
    """Copies committed trail entries to the notify stream until stopped."""

    def __init__(
        self,
        js: JetStreamContext,
        store: TrailReader,
        *,
        namespace: str,
        log: Logger,
        batch: int = 200,
        poll_seconds: float = 0.2,
    ) -> None:
        self._js = js
        self._store = store
        self._subjects = Subjects(namespace)
        self._log = log
        self._batch = batch
        self._poll = poll_seconds
        self._wake = asyncio.Event()
        self._running = False
        #: Trail seq of the last entry the stream is known to hold.
        self.position = 0

    def wake(self) -> None:
        """Look at the trail now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Finish after the entry in hand."""
        self._running = False
        self._wake.set()

    async def run(self) -> None:
        """Make the stream if missing, resume after its last entry, publish new entries."""
        self._running = True
        if not await self._reach_stream():
            return
        while self._running:
            entries = await self._store.audit_entries_after(self.position, limit=self._batch)
            for entry in entries:
                await self._publish(entry)
                self.position = entry.seq
            if len(entries) < self._batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll)
                self._wake.clear()

    async def _reach_stream(self) -> bool:
        """Make the stream if missing and read the position; retry until reached or stopped.

        A NATS user without the grant or a server without JetStream answers with an error or
        not at all: logged (once per backoff step), and tried again, because notify's other
        work must go on meanwhile.
        """
        delay = 1.0
        while self._running:
            try:
                await ensure_notify_stream(self._js, self._subjects.namespace)
                self.position = await self.stored_position()
            except (TimeoutError, nats.errors.Error) as exc:
                self._log.warning(
                    "notify_stream_unreachable", error=type(exc).__name__, retry_in_s=delay
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                self._wake.clear()
                delay = min(delay * 2, 60.0)
            else:
                return True
        return False

    async def stored_position(self) -> int:
        """The trail seq of the stream's last message (0 when the stream is empty)."""
        stream = self._subjects.notify_stream
        info = await self._js.stream_info(stream)
        if not info.state.last_seq:
            return 0
        try:
            last = await self._js.get_msg(stream, seq=info.state.last_seq)
        except nats.js.errors.NotFoundError:
            return 0
        return int((last.headers or {}).get(TRAIL_SEQ_HEADER, "0"))

    async def _publish(self, entry: AuditEntry) -> None:
        message = Outgoing(
            subject=self._subjects.notify_subject(entry.event_type),
            data=entry.wire.encode("utf-8"),
            msg_id=str(entry.event_id),
            headers={TRAIL_SEQ_HEADER: str(entry.seq)},
        )
        try:
            await publish_confirmed(self._js, [message], stream=self._subjects.notify_stream)
        except (TimeoutError, nats.errors.Error) as exc:
            # Not published: the same entry is tried again, never skipped.
            self._log.warning("trail_publish_failed", seq=entry.seq, error=type(exc).__name__)
            raise
