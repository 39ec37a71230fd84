"""What the audit may rely on of the notify service; changing it is a contract change.

Reconcile judges notify by notify's own rules: the routing file's parser and the pure
planner that decides which notifications a signal needs (with their deterministic ids), and
the placeholder participant of a DSMB report announcement. The export reads notify's audit
trail and outbox through its snapshot subject (online) or its COPY statements (offline),
and an offline bundle copies the sent journal as notify's own reader reads it.
"""

from __future__ import annotations

from services.notify.adapters.audit_export import (
    AUDIT_TRAIL_FILE,
    OUTBOX_FILE,
    copy_notify_tables,
    snapshot_subject,
)
from services.notify.adapters.sent_journal import read_entries as read_sent_journal
from services.notify.core.errors import RoutingFileError
from services.notify.core.plan import plan_notifications
from services.notify.core.report import REPORT_PARTICIPANT
from services.notify.core.routing import Routing, parse_routing
from services.notify.ports import JournaledSend

__all__ = [
    "AUDIT_TRAIL_FILE",
    "OUTBOX_FILE",
    "REPORT_PARTICIPANT",
    "JournaledSend",
    "Routing",
    "RoutingFileError",
    "copy_notify_tables",
    "parse_routing",
    "plan_notifications",
    "read_sent_journal",
    "snapshot_subject",
]
