"""One notify audit fact as reconcile reasons about it (pure value type).

Read from the hashed wire form of notify's audit trail (`adapters/parquet_trail.py`), so what
reconcile judges is exactly what the chain protects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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
    #: (`services.notify.published.REPORT_PARTICIPANT`), which is how reconcile knows them.
    participant_id: str | None = None
