"""Composition root of the ingest service: the only module that names concrete adapters.

`build_app(settings, deps)` builds the service (services/ingest/service.py) from settings
and whatever `deps` injects; nothing opens or connects until `await service.start()`.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from kit.auth import TokenStore
from services.ingest.adapters.clock import SystemClock
from services.ingest.adapters.duckdb_log import DuckDBEventLog
from services.ingest.config import Settings
from services.ingest.ports import Clock
from services.ingest.service import Adapters, IngestService


@dataclass(frozen=True, slots=True)
class Deps:
    """Dependencies to inject instead of the ones built from settings (tests, embedding)."""

    clock: Clock | None = None
    event_log: DuckDBEventLog | None = None
    tokens: TokenStore | None = None


def build_app(
    settings: Settings | None = None, deps: Deps | None = None, *, http: bool = True
) -> IngestService:
    """Build (not start) the ingest service; `http=False` serves no HTTP API (in-process use)."""
    settings = settings or Settings()
    deps = deps or Deps()
    bootstrap = settings.bootstrap_token
    adapters = Adapters(
        clock=deps.clock or SystemClock(),
        event_log=deps.event_log or DuckDBEventLog(settings.duckdb_path),
        tokens=deps.tokens
        or TokenStore(
            settings.tokens_path,
            bootstrap_secret=bootstrap.get_secret_value() if bootstrap else None,
        ),
    )
    return IngestService(settings, adapters, http=http)


async def run(settings: Settings | None = None) -> None:
    """Run the ingest service alone until cancelled."""
    os.umask(0o077)  # its DuckDB file, WAL and exports are for the service account only
    service = build_app(settings)
    await service.start()
    try:
        await asyncio.Event().wait()
    finally:
        await service.stop()
