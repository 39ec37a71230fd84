"""The notify sent journal in a bundle: SMTP acceptances not yet in the outbox (shell: Parquet I/O).

notify appends the SMTP server's 250 to its sent journal before it commits "sent" to DuckDB
(services/notify/adapters/sent_journal.py). A notify killed between the two leaves the
outbox row in doubt and no `notification_sent` in its audit trail, while the journal proves
the message was accepted; notify settles this at its next start. An offline export taken
before that restart copies the journal into `notify_sent_journal.parquet`, one row per line
notify's own reader accepts, in the order written, so reconcile can count such a send as
sent and say that it did (`with_journal`, pure).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from services.audit.manifest import SENT_JOURNAL
from services.audit.trail import TrailEntry
from services.notify.ports import JournaledSend

_SCHEMA: Final = pa.schema(
    [
        ("line", pa.int64()),
        ("notification_id", pa.string()),
        ("attempt", pa.int64()),
        ("smtp_reply", pa.string()),
        ("sent_at", pa.timestamp("us", tz="UTC")),
    ]
)
#: Who recorded a send that only the sent journal holds (its trail entry has no seq: 0).
JOURNAL_ACTOR: Final = "notify sent journal"


@dataclass(frozen=True, slots=True)
class JournaledSent:
    """One SMTP acceptance the journal kept."""

    notification_id: str
    attempt: int
    smtp_reply: str
    sent_at: datetime


def write_journal(entries: Sequence[JournaledSend], directory: Path) -> dict[str, Any]:
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


def with_journal(
    trail: Sequence[TrailEntry], journal: Sequence[JournaledSent]
) -> tuple[tuple[TrailEntry, ...], int]:
    """Add a `notification_sent` for each journaled send the trail lacks; count them.

    A journal entry names only the notification: its signal, role and address come from the
    trail's `notification_intended`, which notify commits before it ever sends. One without
    that intention concerns nothing the trail knows of and is left out.
    """
    sent = {e.notification_id for e in trail if e.event_type == "notification_sent"}
    intended = {e.notification_id: e for e in trail if e.event_type == "notification_intended"}
    added: list[TrailEntry] = []
    for entry in journal:
        base = intended.get(entry.notification_id)
        if base is None or entry.notification_id in sent:
            continue
        sent.add(entry.notification_id)
        added.append(
            replace(base, seq=0, event_type="notification_sent", recorded_at=entry.sent_at,
                    actor=JOURNAL_ACTOR, permanent=False)
        )  # fmt: skip
    return (*trail, *added), len(added)
