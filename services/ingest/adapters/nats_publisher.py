"""Confirmed, pipelined publishing of log entries to the facts stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import nats.errors
import pydantic_core

from kit.jetstream import CORRELATION_HEADER, Outgoing, publish_confirmed
from schemas import Subjects
from schemas.subjects import partition_of
from services.ingest.core.chain import Entry
from services.ingest.core.errors import TransientError

if TYPE_CHECKING:
    from nats.js import JetStreamContext

_TICK = "clock_ticked"


class JetStreamPublisher:
    """Publisher port on JetStream: subject per event type, Nats-Msg-Id = event id.

    With several partitions the subject ends in the participant's partition token, computed
    here from (trial, participant): ingest knows the key, nats-server 2.9 can filter on the
    token, and the subject carries a number instead of the participant's code. A clock tick
    belongs to a whole trial, so it is published into every partition, each copy with its
    own Nats-Msg-Id (`<event id>.p<k>`).

    Each fact also carries its event id as the correlation header: it is the id every
    service logs for the alerts the fact causes.
    """

    def __init__(self, js: JetStreamContext, subjects: Subjects, *, partitions: int = 1) -> None:
        self._js = js
        self._subjects = subjects
        self._partitions = partitions

    async def publish(self, entries: Sequence[Entry]) -> None:
        """Return once JetStream has stored every entry; TransientError otherwise."""
        messages = [message for e in entries for message in self._messages(e)]
        try:
            await publish_confirmed(self._js, messages, stream=self._subjects.facts_stream)
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            raise TransientError(f"JetStream publish failed: {type(exc).__name__}") from exc

    def _messages(self, entry: Entry) -> list[Outgoing]:
        headers = {CORRELATION_HEADER: str(entry.event_id)}
        wire, n = entry.wire(), self._partitions
        if n == 1:
            return [Outgoing(self._subjects.fact_subject(entry.event_type), wire,
                             str(entry.event_id), headers=headers)]  # fmt: skip
        if entry.event_type == _TICK:
            targets: Sequence[int] = range(n)
        else:
            raw = pydantic_core.from_json(entry.content)
            targets = (partition_of(raw["trial_id"], raw["participant_id"], n),)
        return [
            Outgoing(
                self._subjects.partitioned_fact_subject(entry.event_type, k, n),
                wire,
                str(entry.event_id) if entry.event_type != _TICK else f"{entry.event_id}.p{k}",
                headers=headers,
            )
            for k in targets
        ]
