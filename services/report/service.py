"""The report service: build, write and announce DSMB reports (what the CLI and scheduler call).

Built by services.report.main.build_app; nothing connects until a report is announced.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from kit.auth import TokenStore
from schemas import Subjects
from services.report import app
from services.report.adapters.duckdb_source import DuckDBLogSource
from services.report.adapters.files import MANIFEST
from services.report.adapters.http_api import build_http_app
from services.report.adapters.ingest_snapshot import fetch_event_log
from services.report.adapters.nats_publisher import NatsReportPublisher
from services.report.adapters.schedule_state import load_state, save_state
from services.report.adapters.writer import FileReportWriter
from services.report.config import Settings
from services.report.core.config import ReportConfig
from services.report.core.issued import report_id

STATE_FILE = "schedule_state.json"
#: Under a reports root: the parsed rows of the latest log snapshot (a cache, see DuckDBLogSource).
PROJECTION_DIR = ".projection"


@dataclass(frozen=True, slots=True)
class ReportService:
    """What the CLI and the scheduler call: build, write and announce DSMB reports."""

    settings: Settings
    config: ReportConfig
    #: The wall clock: when a report was generated (never what it reports on).
    now: Callable[[], datetime]

    def issue_from_log(
        self,
        event_log: Path,
        *,
        as_of: datetime,
        out: Path,
        kind: str = "dsmb_periodic",
        projection: Path | None = None,
    ) -> app.Issued:
        """Build the report from an event-log Parquet file into `out`.

        `projection` keeps the log's parsed rows for later reports on the same snapshot.
        """
        return app.issue_dsmb_report(
            source=DuckDBLogSource(event_log, projection=projection),
            writer=FileReportWriter(),
            config=self.config,
            as_of=as_of,
            out=out,
            now=self.now(),
            kind=kind,
        )

    def fetch_live_log(
        self, directory: Path, *, ingest_url: str | None = None, token: str | None = None
    ) -> Path:
        """Download a snapshot of the running ingest service's log into `directory`.

        Ingest's audit routes need a bearer token of the `auditor` role (kit/auth.py).
        """
        headers = {"Authorization": f"Bearer {token}"} if token else None
        return fetch_event_log(ingest_url or self.settings.ingest_url, directory, headers=headers)

    async def schedule_tick(
        self, event_log: Path, *, root: Path, publish: bool
    ) -> list[app.Issued]:
        """Issue what is due now (monthly, or ad hoc on a new STOP trigger) under `root`."""
        await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
        state_path = root / STATE_FILE
        publisher = (
            NatsReportPublisher(self.settings.nats_url, Subjects(self.settings.namespace))
            if publish
            else None
        )
        issued, state = await app.schedule_tick(
            source=DuckDBLogSource(event_log, projection=root / PROJECTION_DIR),
            writer=FileReportWriter(),
            publisher=publisher,
            config=self.config,
            state=await asyncio.to_thread(load_state, state_path),
            now=self.now(),
            root=root,
        )
        await asyncio.to_thread(save_state, state_path, state)
        return issued

    def build_into(self, event_log: Path, *, as_of: datetime, root: Path) -> dict[str, Any]:
        """Build a report into `root/<report id>/`; return its report.json document."""
        source = DuckDBLogSource(event_log, projection=root / PROJECTION_DIR)
        report = app.build_dsmb_report(source, as_of, self.config)
        kind = "dsmb_on_demand"
        out = root / str(report_id(report, kind))
        app.write_report(report, writer=FileReportWriter(), out=out, now=self.now(), kind=kind)
        document: dict[str, Any] = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        return {"report_id": out.name, **document}

    def http_app(self, *, root: Path, tokens: TokenStore, ingest_token: str | None) -> FastAPI:
        """The DSMB's HTTP API over `root`; on demand it pulls ingest's snapshot first."""

        def on_demand_sync(as_of: datetime) -> dict[str, Any]:
            with tempfile.TemporaryDirectory(prefix="safetymon-report-") as scratch:
                log = self.fetch_live_log(Path(scratch), token=ingest_token)
                return self.build_into(log, as_of=as_of, root=root)

        async def on_demand(as_of: datetime) -> dict[str, Any]:
            return await asyncio.to_thread(on_demand_sync, as_of)

        return build_http_app(root=root, tokens=tokens, on_demand=on_demand)

    async def announce(self, issued: app.Issued) -> None:
        """Publish the report's `ReportIssued` fact on `<ns>.report.report_issued.v1`."""
        subjects = Subjects(self.settings.namespace)
        await app.announce(issued, NatsReportPublisher(self.settings.nats_url, subjects))
