"""The DSMB report ignores the log's clock ticks: the same feed with ticks gives the same report.

Ticks (`clock_ticked`, appended by ingest every period for SAE-02) concern no participant;
the report reads only the clinical event types it tabulates. The fixture feed is ingested
twice, once bare and once with a tick every six hours interleaved in recorded-time order,
through ingest's own validation, chaining and Parquet snapshot.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from services.ingest.adapters.duckdb_log import DuckDBEventLog
from services.ingest.core.accept import Accepted, accept
from services.ingest.core.ticks import tick_fact
from services.report.adapters.duckdb_source import DuckDBLogSource
from services.report.core.build import build_report
from services.report.core.config import ReportConfig
from services.report.core.model import Report
from tests.factories import TRIAL
from tests.unit.report.fixture_feed import AS_OF, fixture_feed

pytestmark = pytest.mark.integration

PERIOD = 6 * 3600


def _log(directory: Path, *, ticks: bool) -> Path:
    """The fixture feed's log, with a tick every PERIOD over its span when `ticks`."""
    timed = []
    for item, recorded in fixture_feed():
        outcome = accept(dict(item), recorded_at=recorded, actor="test")
        assert isinstance(outcome, Accepted), outcome
        timed.append((recorded, outcome.wire))
    if ticks:
        moment, end = timed[0][0], timed[-1][0] + timedelta(days=2)
        while moment <= end:
            timed.append((moment, tick_fact(TRIAL, moment, period_seconds=PERIOD)[1]))
            moment += timedelta(seconds=PERIOD)
    wires = [wire for _, wire in sorted(timed, key=lambda pair: pair[0])]
    return asyncio.run(_append(directory, wires))


async def _append(directory: Path, wires: list[dict[str, Any]]) -> Path:
    directory.mkdir(parents=True)
    log = DuckDBEventLog(directory / "ingest.duckdb")
    log.open()
    try:
        await log.append(wires)
        summary = await log.export_snapshot(directory / "snapshot")
    finally:
        log.close()
    return Path(summary["path"])


def _report(path: Path) -> Report:
    config = ReportConfig()
    return build_report(DuckDBLogSource(path).extract(AS_OF, config), config)


def test_a_log_with_clock_ticks_gives_the_same_tables_charts_and_stops(tmp_path: Path) -> None:
    bare_log = _log(tmp_path / "bare", ticks=False)
    ticked_log = _log(tmp_path / "ticked", ticks=True)

    bare, ticked = _report(bare_log), _report(ticked_log)

    types = pq.read_table(ticked_log, columns=["event_type"]).column("event_type").to_pylist()
    assert types.count("clock_ticked") > 100  # the ticks are on the log, between the facts
    assert ticked.position.seq > bare.position.seq  # and the report's cut counts them
    assert [t.name for t in ticked.tables] == [t.name for t in bare.tables]
    assert ticked.tables == bare.tables
    assert ticked.charts == bare.charts
    assert ticked.stops == bare.stops
    assert any(table.rows for table in bare.tables)
