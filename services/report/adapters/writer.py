"""The report's files together: HTML, CSV, Parquet and `report.json` (adapters layer)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Final

from kit.files import file_sha256
from services.report.adapters.files import write_manifest, write_tables
from services.report.adapters.html import HtmlRenderer
from services.report.core.model import Report

HTML_FILE: Final = "dsmb_report.html"


class FileReportWriter:
    """`ReportWriter` into a local directory."""

    def __init__(self, renderer: HtmlRenderer | None = None) -> None:
        self._renderer = renderer or HtmlRenderer()

    def write(self, report: Report, directory: Path, *, generated_at: datetime) -> dict[str, str]:
        """Write every file; return name -> SHA-256 (the HTML's changes with `generated_at`)."""
        digests = write_tables(report, directory)
        write_manifest(report, directory, digests)
        html = self._renderer.write(report, directory / HTML_FILE, generated_at=generated_at)
        return {**digests, HTML_FILE: file_sha256(html)}
