"""What the audit may rely on of the ingest service; changing it is a contract change.

The audit exports the event log with ingest's own COPY statement when the services are
stopped, and compares the log with the heads ingest published on its anchors stream (read
with ingest's reader, kept in a bundle under ingest's file name). The log's wire form and
hash chain themselves are in `schemas`.
"""

from __future__ import annotations

from services.ingest.adapters.audit_export import EVENT_LOG_FILE, copy_event_log
from services.ingest.adapters.head_anchor import HEADS_FILE, read_heads

__all__ = ["EVENT_LOG_FILE", "HEADS_FILE", "copy_event_log", "read_heads"]
