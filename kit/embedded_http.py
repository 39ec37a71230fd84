"""One uvicorn server task inside the running event loop: start on a port (0 = free), stop.

Services that serve HTTP beside their consumers (notify's API, the rules' metrics port) run
uvicorn as a task of their own loop rather than a thread, so their handlers can await the
service's own connections.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import uvicorn
from fastapi import FastAPI


class EmbeddedHttpServer:
    """Serve `api` on `host:port` as a task named `name`; `options` go to `uvicorn.Config`."""

    def __init__(
        self,
        api: FastAPI,
        *,
        host: str,
        port: int,
        name: str,
        **options: Any,  # noqa: ANN401 - uvicorn's own keywords
    ) -> None:
        self.name = name
        # access_log off: a token in a query string (ack links) must not reach a log.
        self.config = uvicorn.Config(
            api, host=host, port=port, log_config=None, access_log=False, lifespan="off",
            **options,
        )  # fmt: skip
        self._server = uvicorn.Server(self.config)
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None

    async def start(self) -> int:
        """Bind and serve; return the bound port (surfaces a bind error)."""
        self._task = asyncio.create_task(self._server.serve(), name=self.name)
        while not self._server.started:
            if self._task.done():
                await self._task
                msg = f"{self.name} stopped while starting"
                raise RuntimeError(msg)
            await asyncio.sleep(0.01)
        self.port = int(self._server.servers[0].sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Ask uvicorn to exit and wait for it."""
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(self._task, 5.0)
        self._task = None
