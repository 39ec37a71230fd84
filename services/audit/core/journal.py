"""The notify sent journal in a bundle: SMTP acceptances not yet in the outbox (pure).

notify appends the SMTP server's 250 to its sent journal before it commits "sent" to DuckDB
(services/notify/adapters/sent_journal.py). A notify killed between the two leaves the
outbox row in doubt and no `notification_sent` in its audit trail, while the journal proves
the message was accepted; notify settles this at its next start. An offline export taken
before that restart copies the journal into `notify_sent_journal.parquet`
(`adapters/parquet_trail.py`), one row per line notify's own reader accepts, in the order
written, so reconcile can count such a send as sent and say that it did (`with_journal`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from services.audit.core.trail import TrailEntry

#: Who recorded a send that only the sent journal holds (its trail entry has no seq: 0).
JOURNAL_ACTOR: Final = "notify sent journal"


@dataclass(frozen=True, slots=True)
class JournaledSent:
    """One SMTP acceptance the journal kept."""

    notification_id: str
    attempt: int
    smtp_reply: str
    sent_at: datetime


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
