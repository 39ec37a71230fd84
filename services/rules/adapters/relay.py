"""Outbox relay of the rules service (adapters layer): publish committed signals to JetStream.

Rows are published with Nats-Msg-Id = signal id (JetStream drops a repeat inside its
duplicate window; notify dedupes by signal id beyond it), and marked published only after
every PubAck arrived. It runs once at start, to republish what a crash left behind, and then
whenever a committed batch wakes it (with a periodic pass as a safety net).

Each message carries the `Safetymon-Correlation-Id` header, read from the row's own JSON
body (the signal's correlation id, else its causation id), so the outbox table needs no
column for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING

from kit.jetstream import CORRELATION_HEADER, Outgoing, publish_confirmed
from services.rules.ports import EventLog, OutboxRow, SignalOutbox

if TYPE_CHECKING:
    from nats.js import JetStreamContext


class OutboxRelay:
    """Move signals from the outbox to the signals stream, in outbox order."""

    def __init__(
        self,
        outbox: SignalOutbox,
        js: JetStreamContext,
        *,
        stream: str,
        log: EventLog,
        batch_size: int = 500,
        idle_seconds: float = 5.0,
    ) -> None:
        self._outbox = outbox
        self._js = js
        self._stream = stream
        self._log = log
        self._batch_size = batch_size
        self._idle_seconds = idle_seconds
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._stopping = False

    def wake(self) -> None:
        """Ask for a publishing pass soon (called after each committed batch)."""
        self._wake.set()

    async def flush(self) -> int:
        """Publish every unpublished row now; return how many were published."""
        total = 0
        async with self._lock:
            while rows := await self._outbox.unpublished(limit=self._batch_size):
                messages = [_outgoing(row) for row in rows]
                await publish_confirmed(self._js, messages, stream=self._stream)
                await self._outbox.mark_published([r.signal_id for r in rows])
                total += len(rows)
                self._log.info(
                    "signals_published",
                    count=len(rows),
                    first_seq=rows[0].seq,
                    last_seq=rows[-1].seq,
                )
        return total

    async def run(self) -> None:
        """Publish at start, then on every wake-up or idle period, until `stop()`."""
        failures = 0
        while not self._stopping:
            self._wake.clear()
            try:
                await self.flush()
                failures = 0
            except Exception as exc:  # logged and retried: the rows stay in the outbox
                failures += 1
                delay = min(30.0, 0.25 * 2**failures)
                self._log.warning(
                    "signal_publish_retry_scheduled", error=type(exc).__name__, delay_s=delay
                )
                await asyncio.sleep(delay)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._idle_seconds)

    def stop(self) -> None:
        """Ask `run()` to return after the pass in hand."""
        self._stopping = True
        self._wake.set()


def _outgoing(row: OutboxRow) -> Outgoing:
    """The row as a message, with the correlation header when its body names one."""
    try:
        body = json.loads(row.body)
    except ValueError:
        body = None  # the tracing header must never hold a signal back
    correlation = (
        body.get("correlation_id") or body.get("causation_id") if isinstance(body, dict) else None
    )
    headers = {CORRELATION_HEADER: str(correlation)} if correlation else None
    return Outgoing(row.subject, row.body, str(row.signal_id), headers=headers)
