"""Ingest's snapshot: the event log's file and COPY, and the published heads' file and reader."""

from __future__ import annotations

from services.ingest.adapters.audit_export import EVENT_LOG_FILE, copy_event_log
from services.ingest.adapters.head_anchor import HEADS_FILE, read_heads

__all__ = ["EVENT_LOG_FILE", "HEADS_FILE", "copy_event_log", "read_heads"]
