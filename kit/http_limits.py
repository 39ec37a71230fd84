"""Limits every safetymon HTTP server applies to slow or oversized clients (adapter kit).

A client that sends its headers or its body a byte at a time holds a connection (and, for a
body, a request task) for as long as it likes: uvicorn's h11 server has no timeout for either,
and its keep-alive timer stops at the first byte of the next request. Two small pieces close
that gap:
- `server_options()`: uvicorn settings, with `GuardedH11Protocol`, which closes a connection
  whose request line and headers are not complete within `header_timeout` seconds of the
  connection (or of the previous response);
- `BodyLimits`: ASGI middleware that reads the whole request body within a time and size
  budget before the app sees it, answering 408 or 413 (and closing the connection) otherwise.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, Final

from uvicorn.protocols.http.h11_impl import H11Protocol

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Seconds a client has to send a request line and all its headers.
HEADER_TIMEOUT: Final = 10.0
#: Seconds an idle keep-alive connection stays open between requests.
KEEP_ALIVE_TIMEOUT: Final = 5
#: Bytes of an incomplete request line + headers h11 buffers before answering 400.
MAX_HEADER_BYTES: Final = 16 * 1024
#: Connections and tasks at once; beyond it uvicorn answers 503 at once.
MAX_CONCURRENCY: Final = 200
#: Default body budget: seconds to read it all, and its size.
BODY_TIMEOUT: Final = 30.0
MAX_BODY_BYTES: Final = 1024 * 1024


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for each request's line and headers."""

    header_timeout: float = HEADER_TIMEOUT
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override] # uvicorn's own signature narrows it the same way
        """Start the deadline for the first request's headers."""
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the deadline with the connection."""
        self._disarm_header_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        """Start the deadline for the next request's headers on this connection."""
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_overdue)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_overdue(self) -> None:
        self._header_timer = None
        # A request whose headers arrived is running (its body has BodyLimits' own budget);
        # otherwise the client is still on its request line or headers: hang up.
        waiting_for_headers = self.cycle is None or self.cycle.response_complete
        if waiting_for_headers and not self.transport.is_closing():
            self.transport.close()


def server_options(
    *, header_timeout: float = HEADER_TIMEOUT, concurrency: int = MAX_CONCURRENCY
) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.Config`/`uvicorn.run` bounding slow clients."""

    class _Protocol(GuardedH11Protocol):
        pass

    _Protocol.header_timeout = header_timeout  # uvicorn builds the protocol from the class
    return {
        "http": _Protocol,
        "timeout_keep_alive": KEEP_ALIVE_TIMEOUT,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "limit_concurrency": concurrency,
    }


class _TooLargeError(Exception):
    pass


class _DisconnectedError(Exception):
    pass


class BodyLimits:
    """Read each request body within `timeout` seconds and `max_bytes`, then run the app.

    The app then reads the buffered body as usual; a body arriving too slowly is answered
    408, one too large 413 (as soon as its Content-Length or its bytes say so), both with
    `Connection: close`, so the rest of the body is never read.
    """

    def __init__(
        self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES, timeout: float = BODY_TIMEOUT
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Buffer the body under the limits, or refuse the request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _declared_length(scope) > self.max_bytes:
            await _refuse(send, 413, f"the body exceeds {self.max_bytes} bytes")
            return
        try:
            async with asyncio.timeout(self.timeout):
                messages = await self._read(receive)
        except TimeoutError:
            await _refuse(send, 408, f"the body did not arrive within {self.timeout:g} s")
            return
        except _TooLargeError:
            await _refuse(send, 413, f"the body exceeds {self.max_bytes} bytes")
            return
        except _DisconnectedError:
            return
        await self.app(scope, _replay(messages, receive), send)

    async def _read(self, receive: Receive) -> list[Message]:
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _DisconnectedError
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                raise _TooLargeError
            messages.append(message)
            if not message.get("more_body", False):
                return messages


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0  # h11 refuses a malformed length before the app runs
    return 0


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        # After the buffered body, the server's own receive reports a disconnect.
        return pending.pop(0) if pending else await receive()

    return replayed


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"error": detail}).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
