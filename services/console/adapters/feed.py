"""The console's JetStream feed (adapters layer): one durable pull consumer per stream."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from kit.jetstream import BatchConsumer, Delivery
from schemas import Subjects
from schemas.subjects import CONSOLE_FACTS_DURABLE, CONSOLE_NOTIFY_DURABLE, CONSOLE_SIGNALS_DURABLE
from services.console.app import Projector
from services.console.core.events import Source

if TYPE_CHECKING:
    from nats.js import JetStreamContext


def durables(namespace: str) -> list[tuple[Source, str, str]]:
    """(source, stream, durable) of each stream the console projects."""
    s = Subjects(namespace)
    return [
        ("fact", s.facts_stream, CONSOLE_FACTS_DURABLE),
        ("signal", s.signals_stream, CONSOLE_SIGNALS_DURABLE),
        ("notify", s.notify_stream, CONSOLE_NOTIFY_DURABLE),
    ]


def _handler(
    projector: Projector, source: Source, durable: str
) -> Callable[[Sequence[Delivery]], Awaitable[None]]:
    async def handle(deliveries: Sequence[Delivery]) -> None:
        await projector.handle(source, durable, [(d.stream_seq, d.data) for d in deliveries])

    return handle


def build_consumers(
    js: JetStreamContext, projector: Projector, *, namespace: str, max_batch: int
) -> list[BatchConsumer]:
    """One BatchConsumer per stream; each acks only after its batch is committed."""
    return [
        BatchConsumer(
            js,
            stream=stream,
            durable=durable,
            max_batch=max_batch,
            handler=_handler(projector, source, durable),
        )
        for source, stream, durable in durables(namespace)
    ]
