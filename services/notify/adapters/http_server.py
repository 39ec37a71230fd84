"""Uvicorn in the notify process (adapters layer): start on a port (0 = free), stop cleanly.

Slow clients are cut off by kit/http_limits.py (header deadline, keep-alive, concurrency).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from fastapi import FastAPI

from kit.embedded_http import EmbeddedHttpServer
from kit.http_limits import server_options
from services.notify.core.ack import check_key


class HttpServer(EmbeddedHttpServer):
    """Notify's HTTP API in the running event loop, with the slow-client limits."""

    def __init__(self, api: FastAPI, *, host: str, port: int) -> None:
        super().__init__(api, host=host, port=port, name="notify-http", **server_options())


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
