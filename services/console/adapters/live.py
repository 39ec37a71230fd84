"""Live updates (adapters layer): projection changes fanned out to server-sent event streams."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from services.console.ports import Change

#: A slow page drops changes beyond this; it re-reads everything on the next one anyway.
_QUEUE = 64


class LiveHub:
    """Every open event stream gets every change; each page filters what its viewer may see."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[Change | None]] = set()

    def publish(self, change: Change) -> None:
        """Hand `change` to every listener without waiting."""
        for queue in list(self._queues):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(change)

    def close(self) -> None:
        """End every stream (None), so the server can stop."""
        for queue in list(self._queues):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[asyncio.Queue[Change | None]]:
        """A queue of changes (None: the hub closed) while the caller stays in the block."""
        queue: asyncio.Queue[Change | None] = asyncio.Queue(_QUEUE)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)
