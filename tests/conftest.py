"""Fixtures shared by every test layer: the real NATS server, a real SMTP server, namespaces."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import uuid4

import pytest
import structlog

from tests.credentials import TEST_TOKEN
from tests.factories import ROUTING

if TYPE_CHECKING:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, Envelope, Session

    from safetymon.runner import Stack

# The NATS client, the SMTP server and the runner (every service) are imported by the fixtures
# that use them: this file is loaded for every layer, and the unit layer needs none of them.

NATS_URL = os.environ.get("SAFETYMON_NATS_URL", "nats://127.0.0.1:4222")
# Clock ticks off for the whole session. With the 60 s default every ingest a test starts
# (stack fixtures, Settings built directly, `safetymon up` processes inheriting this
# environment) appends a tick at start-up and at each minute boundary, and tests count log
# entries, stream messages and emails exactly. Tests of SAE-02's clock set their own period
# (monkeypatch.setenv); the demo and chaos runs build their own environments.
os.environ["SAFETYMON_CLOCK_TICK_SECONDS"] = "0"


def free_port() -> int:
    """A TCP port nobody listens on right now (aiosmtpd cannot take port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ReceivedMail:
    """One message as the SMTP server received it."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> Message:
        return message_from_bytes(self.raw, policy=default_policy)


def _raw(envelope: Envelope) -> bytes:
    content = envelope.content or b""
    return content.encode("utf-8") if isinstance(content, str) else bytes(content)


@dataclass
class SmtpRecorder:
    """aiosmtpd handler that keeps every accepted message; optionally refuses with a code."""

    received: list[ReceivedMail] = field(default_factory=list)
    refuse_with: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        if self.refuse_with:
            return self.refuse_with
        with self._lock:
            self.received.append(
                ReceivedMail(str(envelope.mail_from), list(envelope.rcpt_tos), _raw(envelope))
            )
        return "250 2.0.0 Ok: queued as TEST" + uuid4().hex[:8].upper()

    def snapshot(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self.received)

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[ReceivedMail]:
        """Wait until at least `count` messages arrived; fail with what did arrive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.snapshot()
            if len(got) >= count:
                return got
            await asyncio.sleep(0.02)
        got = self.snapshot()
        msg = f"expected {count} messages, got {len(got)}: {[m.rcpt_tos for m in got]}"
        raise AssertionError(msg)


@dataclass
class SmtpServer:
    host: str
    port: int
    recorder: SmtpRecorder
    controller: Controller


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real aiosmtpd server on a free port, recording what it accepts."""
    from aiosmtpd.controller import Controller  # see the note at the imports

    recorder = SmtpRecorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, recorder, controller)
    finally:
        controller.stop()


@pytest.fixture
def nats_url() -> str:
    """URL of the real NATS server with JetStream (`make test` starts one when none answers)."""
    host, _, port = NATS_URL.removeprefix("nats://").partition(":")
    try:
        socket.create_connection((host, int(port or 4222)), timeout=1).close()
    except OSError as exc:
        msg = f"no NATS server at {NATS_URL}: run the tests with `make test`, which starts one"
        raise RuntimeError(msg) from exc
    return NATS_URL


@pytest.fixture
async def namespace(nats_url: str) -> AsyncIterator[str]:
    """A namespace of our own on the shared server; its streams are deleted afterwards."""
    ns = f"t{uuid4().hex[:12]}"
    yield ns
    await delete_namespace_streams(nats_url, ns)


async def delete_namespace_streams(nats_url: str, ns: str) -> None:
    """Delete every stream the services create in namespace `ns` (those that exist)."""
    import nats  # see the note at the imports

    from schemas import Subjects
    from services.ingest.adapters.head_anchor import anchor_stream

    subjects = Subjects(ns)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    # notify creates the reports stream too (it consumes issued DSMB reports), and ingest
    # the stream of its published log heads.
    streams = (subjects.facts_stream, subjects.signals_stream, subjects.reports_stream,
               subjects.notify_stream, anchor_stream(ns))  # fmt: skip
    for stream in streams:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(stream)
    await nc.close()


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def stack_environment(
    tmp_path: Path,
    nats_url: str,
    namespace: str,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """Point the runner at the real NATS, the test SMTP server and the test routing file."""
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING)
    for key, value in {
        "SAFETYMON_NATS_URL": nats_url,
        "SAFETYMON_NAMESPACE": namespace,
        "SAFETYMON_SMTP_HOST": smtp_server.host,
        "SAFETYMON_SMTP_PORT": str(smtp_server.port),
        "SAFETYMON_ROUTING": str(routing),
        # The stack accepts this admin credential, and clients (ingest_files, audit export)
        # send it, so tests reach the authenticated API without a token file.
        "SAFETYMON_BOOTSTRAP_TOKEN": TEST_TOKEN,
        "SAFETYMON_TOKEN": TEST_TOKEN,
    }.items():
        monkeypatch.setenv(key, value)
    return tmp_path / "data"


@pytest.fixture
async def stack(stack_environment: Path) -> AsyncIterator[Stack]:
    """The three services in this process, as `safetymon up` runs them."""
    from tools.stack import start_stack  # see the note at the imports

    running = await start_stack(data_dir=stack_environment, http_port=0)
    yield running
    await running.stop()
