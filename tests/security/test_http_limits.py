"""Slow and oversized HTTP clients are cut off (kit/http_limits.py), over real sockets.

A real uvicorn server in this event loop; a raw socket sends its headers or body slowly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
import uvicorn
from fastapi import FastAPI, Request

from kit.http_limits import BodyLimits, GuardedH11Protocol, server_options


def _echo_app() -> FastAPI:
    api = FastAPI()

    @api.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    api.add_middleware(BodyLimits, max_bytes=1000, timeout=0.5)
    return api


@pytest.fixture
async def server() -> AsyncIterator[int]:
    """The echo app behind the limits (header deadline 0.5 s) on a free port."""
    config = uvicorn.Config(
        _echo_app(), host="127.0.0.1", port=0, log_config=None, lifespan="off",
        **server_options(header_timeout=0.5),
    )  # fmt: skip
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve())
    while not served.started:
        assert not task.done()
        await asyncio.sleep(0.01)
    yield int(served.servers[0].sockets[0].getsockname()[1])
    served.should_exit = True
    await asyncio.wait_for(task, 5)


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sends until it closes the connection (fails after `seconds`)."""
    return await asyncio.wait_for(reader.read(), seconds)


async def _drip(writer: asyncio.StreamWriter, data: bytes, *, stop: Callable[[], bool]) -> None:
    for byte in data:
        if stop():
            return
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.1)


async def test_a_client_sending_its_headers_slowly_is_disconnected(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    headers = b"POST /echo HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 100 + b"\r\n\r\n"
    started = time.monotonic()
    dripping = asyncio.create_task(_drip(writer, headers, stop=writer.is_closing))

    received = await _closed_within(reader, 5)

    assert received == b""  # hung up, no answer
    assert time.monotonic() - started < 3  # the whole header would take 12 s
    dripping.cancel()
    writer.close()


async def test_an_idle_connection_is_disconnected_before_its_first_request(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)

    received = await _closed_within(reader, 5)

    assert received == b""
    writer.close()


async def test_a_body_sent_slowly_is_answered_408_and_the_connection_closed(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
    dripping = asyncio.create_task(_drip(writer, b"b" * 100, stop=writer.is_closing))

    received = await _closed_within(reader, 5)

    assert received.startswith(b"HTTP/1.1 408")
    assert b"connection: close" in received.lower()
    dripping.cancel()
    writer.close()


async def test_a_body_over_the_limit_is_answered_413_before_it_is_read(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")

    received = await _closed_within(reader, 5)

    assert received.startswith(b"HTTP/1.1 413")
    writer.close()


async def test_a_chunked_body_over_the_limit_is_answered_413(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    chunk = b"600\r\n" + b"c" * 0x600 + b"\r\n"
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk)

    received = await _closed_within(reader, 5)

    assert received.startswith(b"HTTP/1.1 413")
    writer.close()


async def test_a_prompt_request_is_answered_and_kept_alive(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    request = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"

    writer.write(request)
    first = await asyncio.wait_for(reader.readuntil(b'{"bytes":3}'), 5)
    writer.write(request)
    second = await asyncio.wait_for(reader.readuntil(b'{"bytes":3}'), 5)

    assert first.startswith(b"HTTP/1.1 200")
    assert second.startswith(b"HTTP/1.1 200")
    writer.close()


def test_every_server_runs_with_the_limits() -> None:
    """The notify server, ingest's and `audit serve` take the guarded protocol."""
    from services.notify.adapters.http_server import HttpServer

    notify = HttpServer(FastAPI(), host="127.0.0.1", port=0)

    assert issubclass(notify.config.http, GuardedH11Protocol)  # type: ignore[arg-type]
    assert notify.config.timeout_keep_alive == server_options()["timeout_keep_alive"]
    assert notify.config.limit_concurrency == server_options()["limit_concurrency"]
