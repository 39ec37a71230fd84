"""Build a real `event_log.parquet` from submissions with ingest's own code (test support).

Each submission goes through ingest's `accept` (validation, unit normalisation), is chained
and appended by `DuckDBEventLog`, and the file is written by the same `export_snapshot` the
`POST /v1/audit/snapshot` route uses. No NATS is involved: the relay is not part of the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from services.ingest.adapters.duckdb_log import DuckDBEventLog
from services.ingest.core.accept import Rejection, accept

RecordedAt = Callable[[Mapping[str, Any]], datetime]


def running_clock(lag: timedelta = timedelta(hours=1)) -> RecordedAt:
    """recorded_at = latest clinical time seen so far + `lag`: monotonic, like a live feed."""
    latest: list[datetime] = []

    def recorded_at(item: Mapping[str, Any]) -> datetime:
        occurred = datetime.fromisoformat(str(item["occurred_at"]))
        if not latest or occurred > latest[0]:
            latest[:] = [occurred]
        return latest[0] + lag

    return recorded_at


def build_event_log(
    items: Iterable[Mapping[str, Any]],
    directory: Path,
    *,
    recorded_at: RecordedAt,
    batch: int = 20_000,
) -> Path:
    """Ingest `items` in order into a fresh log under `directory`; return the Parquet path."""
    return asyncio.run(_build(items, directory, recorded_at=recorded_at, batch=batch))


async def _build(
    items: Iterable[Mapping[str, Any]], directory: Path, *, recorded_at: RecordedAt, batch: int
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    log = DuckDBEventLog(directory / "ingest.duckdb")
    log.open()
    try:
        wires: list[dict[str, Any]] = []
        for item in items:
            result = accept(dict(item), recorded_at=recorded_at(item), actor="test")
            if isinstance(result, Rejection):
                raise TypeError(f"rejected {item.get('source_ref')}: {result.errors}")
            wires.append(result.wire)
            if len(wires) >= batch:
                await log.append(wires)
                wires = []
        if wires:
            await log.append(wires)
        summary = await log.export_snapshot(directory / "snapshot")
    finally:
        log.close()
    return Path(summary["path"])
