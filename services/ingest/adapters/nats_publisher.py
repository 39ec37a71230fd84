"""Confirmed, pipelined publishing of log entries to the facts stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import nats.errors

from kit.jetstream import CORRELATION_HEADER, Outgoing, publish_confirmed
from schemas import Subjects
from services.ingest.core.chain import Entry
from services.ingest.core.errors import TransientError

if TYPE_CHECKING:
    from nats.js import JetStreamContext


class JetStreamPublisher:
    """Publisher port on JetStream: subject per event type, Nats-Msg-Id = event id.

    Each fact also carries its event id as the correlation header: it is the id every
    service logs for the alerts the fact causes.
    """

    def __init__(self, js: JetStreamContext, subjects: Subjects) -> None:
        self._js = js
        self._subjects = subjects

    async def publish(self, entries: Sequence[Entry]) -> None:
        """Return once JetStream has stored every entry; TransientError otherwise."""
        messages = [
            Outgoing(
                self._subjects.fact_subject(e.event_type),
                e.wire(),
                str(e.event_id),
                headers={CORRELATION_HEADER: str(e.event_id)},
            )
            for e in entries
        ]
        try:
            await publish_confirmed(self._js, messages, stream=self._subjects.facts_stream)
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            raise TransientError(f"JetStream publish failed: {type(exc).__name__}") from exc
