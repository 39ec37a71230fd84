"""A running console beside the test stack, and tokens of the roles the pages are tested with."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.js.errors
import pytest

from kit.auth import Role, TokenStore
from safetymon.runner import Stack
from schemas import Subjects
from services.console.config import Settings
from services.console.main import build_app
from services.console.service import ConsoleService


@dataclass(frozen=True)
class Console:
    """The console service, its URL, the stack it follows and one token per tested role."""

    service: ConsoleService
    url: str
    stack: Stack
    tokens: dict[str, str]


@pytest.fixture
async def notify_stream_cleanup(nats_url: str, namespace: str) -> AsyncIterator[None]:
    """Deletes the notify stream after everything else stopped (the namespace fixture does not)."""
    yield
    nc = await nats.connect(nats_url)
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await nc.jetstream().delete_stream(Subjects(namespace).notify_stream)
    await nc.close()


@pytest.fixture
async def console(
    notify_stream_cleanup: None, stack: Stack, stack_environment: Path, namespace: str
) -> AsyncIterator[Console]:
    """The console on a free port, acknowledging through the stack's notify."""
    del notify_stream_cleanup
    store = TokenStore(stack_environment / "tokens.json")
    tokens = {
        name: store.create(name, role, site)[1]
        for name, role, site in (
            ("so1", Role.safety_officer, None),
            ("inv-s01", Role.investigator, "S01"),
            ("inv-s02", Role.investigator, "S02"),
            ("sub-s01", Role.submitter, "S01"),
            ("aud1", Role.auditor, None),
        )
    }
    running = stack.services.get("console")
    if isinstance(running, ConsoleService):  # the stack runs one already: the same file
        yield Console(running, running.url, stack, tokens)
        return
    notify_port = getattr(stack.services["notify"], "http_port", None)
    settings = Settings(
        data_dir=stack_environment,
        nats_url=stack.nats_url,
        namespace=namespace,
        notify_url=f"http://127.0.0.1:{notify_port}",
    )
    service = build_app(settings)
    await service.start()
    yield Console(service, service.url, stack, tokens)
    await service.stop()
