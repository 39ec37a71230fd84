"""Read a bundle's notify audit trail as typed entries for reconcile (shell: Parquet I/O).

Entries are read from the hashed wire form, not from the copied columns, so what reconcile
reasons about is exactly what the chain protects. Event types this version does not know
are kept (with their signal id) rather than dropped: a newer notify may record more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from services.audit.manifest import AUDIT_TRAIL


@dataclass(frozen=True, slots=True)
class TrailEntry:
    """One notify audit fact: a notification step, an acknowledgement or an escalation."""

    seq: int
    event_type: str
    signal_id: str | None
    recorded_at: datetime
    notification_id: str | None = None
    role: str | None = None
    address: str | None = None
    permanent: bool = False
    actor: str | None = None
    level: int | None = None
    #: The envelope's participant; notify's DSMB report announcements carry a placeholder
    #: (`services.notify.core.report.REPORT_PARTICIPANT`), which is how reconcile knows them.
    participant_id: str | None = None


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
