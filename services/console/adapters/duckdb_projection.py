"""The console's own DuckDB file (adapters layer): projected events and stream positions.

One writer thread owns the file (kit/duckdb_worker.py); no other process opens it. Each
batch's new events and its stream position are committed in one transaction, and an event
already present (a redelivery, a republish past JetStream's duplicate window) is skipped by
its id, so applying a batch twice changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import duckdb

from kit.duckdb_worker import DuckDBWorker, transaction
from services.console.core.events import Event, Source, parse_event

SCHEMA: Final = """
CREATE SEQUENCE IF NOT EXISTS arrival_seq;
CREATE TABLE IF NOT EXISTS events (
    event_id VARCHAR PRIMARY KEY,
    source VARCHAR NOT NULL,
    event_type VARCHAR NOT NULL,
    participant_id VARCHAR,
    site_id VARCHAR,
    signal_id VARCHAR,
    arrival BIGINT NOT NULL DEFAULT nextval('arrival_seq'),
    wire VARCHAR NOT NULL
);
CREATE INDEX IF NOT EXISTS events_participant ON events (participant_id);
CREATE TABLE IF NOT EXISTS positions (durable VARCHAR PRIMARY KEY, stream_seq BIGINT NOT NULL);
"""
_INSERT: Final = """
INSERT INTO events (event_id, source, event_type, participant_id, site_id, signal_id, wire)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
_POSITION: Final = """
INSERT INTO positions VALUES (?, ?) ON CONFLICT (durable)
DO UPDATE SET stream_seq = greatest(positions.stream_seq, excluded.stream_seq)
"""
_SELECT: Final = """
SELECT source, wire FROM events
WHERE list_contains($sources, source)
  AND ($participant IS NULL OR participant_id = $participant)
  AND ($signal IS NULL OR signal_id = $signal)
ORDER BY arrival
"""


class DuckDBProjection:
    """Events by id, in arrival order, with each durable's last committed stream sequence."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._worker = DuckDBWorker(path)

    def open(self) -> None:
        """Open (or create) the file."""
        self._worker.open(SCHEMA)

    def close(self) -> None:
        """Checkpoint and close the file."""
        self._worker.close()

    async def apply(self, durable: str, events: Sequence[Event], last_seq: int) -> list[Event]:
        """Insert the events not yet present and the position, in one transaction."""

        def body(con: duckdb.DuckDBPyConnection) -> list[Event]:
            ids = [e.event_id for e in events]
            rows = con.execute(
                "SELECT event_id FROM events WHERE list_contains(?, event_id)", [ids]
            ).fetchall()
            present = {row[0] for row in rows}
            new = _first_of_each([e for e in events if e.event_id not in present])
            for e in new:
                con.execute(
                    _INSERT,
                    [
                        e.event_id,
                        e.source,
                        e.event_type,
                        e.participant_id,
                        e.site_id,
                        e.signal_id,
                        json.dumps(e.body),
                    ],
                )
            con.execute(_POSITION, [durable, last_seq])
            return new

        return await self._worker.run(lambda con: transaction(con, lambda: body(con)))

    async def position(self, durable: str) -> int:
        """The last committed stream sequence of `durable`, 0 before the first."""
        sql = "SELECT stream_seq FROM positions WHERE durable = ?"
        row = await self._worker.run(lambda con: con.execute(sql, [durable]).fetchone())
        return int(row[0]) if row else 0

    async def counts(self) -> dict[str, int]:
        """How many events of each source are projected."""
        sql = "SELECT source, count(*) FROM events GROUP BY source"
        rows = await self._worker.run(lambda con: con.execute(sql).fetchall())
        return {str(source): int(count) for source, count in rows}

    async def events(
        self,
        *,
        sources: Sequence[Source],
        participant_id: str | None = None,
        signal_id: str | None = None,
    ) -> list[Event]:
        """Projected events in arrival order."""
        params = {"sources": list(sources), "participant": participant_id, "signal": signal_id}
        rows = await self._worker.run(lambda con: con.execute(_SELECT, params).fetchall())
        return [parse_event(source, wire.encode("utf-8")) for source, wire in rows]


def _first_of_each(events: Sequence[Event]) -> list[Event]:
    seen: set[str] = set()
    unique = []
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            unique.append(event)
    return unique
