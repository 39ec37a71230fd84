"""Read a bundle's notify audit trail and sent journal as typed entries for reconcile (Parquet I/O).

Entries are read from the hashed wire form, not from the copied columns, so what reconcile
reasons about is exactly what the chain protects. Event types this version does not know
are kept (with their signal id) rather than dropped: a newer notify may record more.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from schemas.snapshots import FileReport
from services.audit.core.journal import JournaledSent
from services.audit.core.manifest import AUDIT_TRAIL, SENT_JOURNAL
from services.audit.core.trail import TrailEntry
from services.notify.published.model import JournaledSend

_SCHEMA: Final = pa.schema(
    [
        ("line", pa.int64()),
        ("notification_id", pa.string()),
        ("attempt", pa.int64()),
        ("smtp_reply", pa.string()),
        ("sent_at", pa.timestamp("us", tz="UTC")),
    ]
)


def read_trail(bundle: Path, *, as_of: datetime | None = None) -> tuple[TrailEntry, ...]:
    """The trail's entries in seq order (recorded at or before `as_of` when given)."""
    table = pq.read_table(bundle / AUDIT_TRAIL, columns=["seq", "wire"])
    entries = []
    for seq, wire in zip(
        table.column("seq").to_pylist(), table.column("wire").to_pylist(), strict=True
    ):
        entry = _entry(int(seq), json.loads(wire))
        if as_of is None or entry.recorded_at <= as_of:
            entries.append(entry)
    return tuple(entries)


def _entry(seq: int, wire: dict[str, Any]) -> TrailEntry:
    payload = wire.get("payload") or {}
    signal_id = payload.get("signal_id") or wire.get("causation_id")
    return TrailEntry(
        seq=seq,
        event_type=str(wire.get("event_type")),
        signal_id=None if signal_id is None else str(signal_id),
        recorded_at=datetime.fromisoformat(str(wire["recorded_at"])),
        notification_id=payload.get("notification_id"),
        role=payload.get("role"),
        address=payload.get("address"),
        permanent=bool(wire.get("permanent", False)),
        actor=payload.get("by") or wire.get("actor"),
        level=payload.get("level"),
        participant_id=wire.get("participant_id"),
    )


def write_journal(entries: Sequence[JournaledSend], directory: Path) -> FileReport:
    """Write the journal's entries to `<directory>/notify_sent_journal.parquet`; report rows."""
    path = directory / SENT_JOURNAL
    columns = {
        "line": list(range(1, len(entries) + 1)),
        "notification_id": [str(entry.notification_id) for entry in entries],
        "attempt": [entry.attempt for entry in entries],
        "smtp_reply": [entry.smtp_reply for entry in entries],
        "sent_at": [entry.at for entry in entries],
    }
    pq.write_table(pa.table(columns, schema=_SCHEMA), path)
    return {"path": str(path), "rows": len(entries)}


def read_journal(bundle: Path, *, as_of: datetime | None = None) -> tuple[JournaledSent, ...]:
    """The bundle's journaled sends (accepted at or before `as_of`); none without the file."""
    path = bundle / SENT_JOURNAL
    if not path.is_file():
        return ()
    rows = pq.read_table(path, columns=["notification_id", "attempt", "smtp_reply", "sent_at"])
    entries = (
        JournaledSent(str(row["notification_id"]), int(row["attempt"]), str(row["smtp_reply"]),
                      row["sent_at"])
        for row in rows.to_pylist()
    )  # fmt: skip
    return tuple(e for e in entries if as_of is None or e.sent_at <= as_of)
