"""Notify's snapshot: its files, the COPY that writes them, its subject, the sent journal."""

from __future__ import annotations

from services.notify.adapters.audit_export import (
    AUDIT_TRAIL_FILE,
    OUTBOX_FILE,
    copy_notify_tables,
    snapshot_subject,
)
from services.notify.adapters.sent_journal import read_entries as read_sent_journal

__all__ = [
    "AUDIT_TRAIL_FILE",
    "OUTBOX_FILE",
    "copy_notify_tables",
    "read_sent_journal",
    "snapshot_subject",
]
