"""Composition root of the console: the only module that names concrete adapters.

`build_app(settings, deps)` builds the console (services/console/service.py) from settings
and whatever `deps` injects; nothing opens or connects until `await console.start()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from services.console.adapters.duckdb_projection import DuckDBProjection
from services.console.adapters.live import LiveHub
from services.console.config import Settings
from services.console.ports import Clock
from services.console.service import Adapters, ConsoleService


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Deps:
    """Dependencies to inject instead of the ones built from settings (tests, embedding)."""

    clock: Clock | None = None
    projection: DuckDBProjection | None = None
    hub: LiveHub | None = None


def build_app(settings: Settings | None = None, deps: Deps | None = None) -> ConsoleService:
    """The console, from the environment unless settings are given."""
    settings = settings or Settings()
    deps = deps or Deps()
    adapters = Adapters(
        clock=deps.clock or _SystemClock(),
        projection=deps.projection or DuckDBProjection(settings.duckdb_path),
        hub=deps.hub or LiveHub(),
    )
    return ConsoleService(settings, adapters)
