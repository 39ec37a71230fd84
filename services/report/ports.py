"""What the report's use-cases need from the outside world (ports layer)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Protocol

from schemas import ReportIssued
from services.report.core.config import ReportConfig
from services.report.core.model import Extract, Report


class SafetyData(Protocol):
    """The log's aggregates as of a recorded time."""

    def extract(self, as_of: datetime, config: ReportConfig) -> Extract:
        """Aggregate every event recorded at or before `as_of`."""
        ...


class ReportWriter(Protocol):
    """Writes the report's files into a directory."""

    def write(self, report: Report, directory: Path, *, generated_at: datetime) -> dict[str, str]:
        """Write HTML, CSV, Parquet and the manifest; return file name -> SHA-256."""
        ...


class ReportPublisher(Protocol):
    """Announces an issued report (to notify, through NATS)."""

    async def publish(self, fact: ReportIssued) -> None:
        """Publish the fact, confirmed; a repeat of the same event id is a no-op."""
        ...
