"""Composition root of the report service: the only module that names concrete adapters.

`build_app(settings, deps)` builds the service (services/report/service.py); nothing
connects until a report is announced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from services.report.adapters.trial_config import load_report_config
from services.report.config import Settings
from services.report.core.config import ReportConfig
from services.report.service import ReportService


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Deps:
    """Dependencies to inject instead of the ones built from settings (tests, embedding)."""

    #: The parsed report configuration (instead of reading `config` or the settings' file).
    config: ReportConfig | None = None
    now: Callable[[], datetime] | None = None


def build_app(
    settings: Settings | None = None, deps: Deps | None = None, *, config: Path | None = None
) -> ReportService:
    """Wire the service; `config` names another report configuration file than the settings'."""
    settings = settings or Settings()
    deps = deps or Deps()
    parsed = deps.config or load_report_config(config or settings.report_config)
    return ReportService(settings, parsed, now=deps.now or _now)
