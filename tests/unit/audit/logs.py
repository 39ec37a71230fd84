"""Event logs for the replay tests, written by ingest's own code and exported by its own COPY.

Submissions go through `accept` (validation, unit normalisation, event ids), the DuckDB log
adapter chains and appends them, and `copy_event_log` writes the Parquet file a bundle holds:
the same path as production, only the recorded time is chosen by the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from services.ingest.adapters.audit_export import copy_event_log
from services.ingest.adapters.duckdb_log import DuckDBEventLog
from services.ingest.core.accept import Accepted, accept


def accepted_wires(items: Iterable[tuple[dict[str, Any], datetime]]) -> list[dict[str, Any]]:
    """Wire forms of submissions, each recorded at its given time; a rejection fails the test."""
    wires = []
    for item, recorded_at in items:
        outcome = accept(item, recorded_at=recorded_at, actor="test-feed")
        assert isinstance(outcome, Accepted), outcome
        wires.append(outcome.wire)
    return wires


def write_log(directory: Path, wires: Sequence[dict[str, Any]], *, batch: int = 10_000) -> Path:
    """Append the wires to a fresh ingest.duckdb, then export event_log.parquet into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "ingest.duckdb"
    log = DuckDBEventLog(database)
    log.open()
    try:

        async def append_all() -> None:
            for start in range(0, len(wires), batch):
                await log.append(wires[start : start + batch])

        asyncio.run(append_all())
    finally:
        log.close()
    con = duckdb.connect(str(database), read_only=True)
    try:
        report = copy_event_log(con, directory)
    finally:
        con.close()
    return Path(report["path"])
