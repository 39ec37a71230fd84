"""The system clock: the only place ingest reads the time (recorded_at)."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """Clock port on the system clock, UTC."""

    def now(self) -> datetime:
        """Now, timezone-aware UTC."""
        return datetime.now(UTC)
