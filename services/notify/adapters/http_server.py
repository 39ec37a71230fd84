"""Uvicorn in the notify process (adapters layer): start on a port (0 = free), stop cleanly.

Slow clients are cut off by kit/http_limits.py (header deadline, keep-alive, concurrency).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from kit.http_limits import server_options
from services.notify.core.ack import check_key


class HttpServer:
    """One uvicorn server task serving `api` inside the running event loop."""

    def __init__(self, api: FastAPI, *, host: str, port: int) -> None:
        # access_log off: an acknowledgement token in a query string must not reach a log.
        self.config = uvicorn.Config(
            api, host=host, port=port, log_config=None, access_log=False, lifespan="off",
            **server_options(),
        )  # fmt: skip
        self._server = uvicorn.Server(self.config)
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None

    async def start(self) -> int:
        """Bind and serve; return the bound port (surfaces a bind error)."""
        self._task = asyncio.create_task(self._server.serve(), name="notify-http")
        while not self._server.started:
            if self._task.done():
                await self._task
                msg = "notify HTTP server stopped while starting"
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


def load_or_create_secret(path: Path) -> bytes:
    """Read the acknowledgement key, creating it (mode 0600) on first start.

    Raises:
        AckKeyError: the file holds fewer than 32 bytes (e.g. emptied by hand): the service
            must not start and sign links with a guessable key.

    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            # 64 hex characters, used as they are (not decoded): keys written by every
            # earlier version have this form and keep verifying the links already sent.
            handle.write(secrets.token_hex(32) + "\n")
    key = path.read_text(encoding="ascii").strip().encode("ascii")
    return check_key(key, source=str(path))
