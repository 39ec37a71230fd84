"""Clock ticks the ingest service appends to the log (core layer; pure: time is an argument).

Rules never read a clock (DESIGN.md principle 2); reporting clocks such as SAE-02's 24 h
advance on `ClockTicked` facts instead, so a replay of the log fires the same reminders at
the same positions. A tick is aligned to its period boundary and its `source_ref` names
trial and boundary, so a restart (or a second ingest process) appending the same boundary
is deduplicated on its key (trial, no site, source, source_ref) like any resubmission.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from schemas import ClockTicked
from services.ingest.core.accept import event_id_for

SOURCE: Final = "safetymon-clock"
ACTOR: Final = "safetymon-ingest"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def boundary(now: datetime, period_seconds: int) -> datetime:
    """The latest period boundary at or before `now` (UTC)."""
    if period_seconds < 1:
        raise ValueError(f"tick period must be at least 1 s, got {period_seconds}")
    elapsed = int((now.astimezone(UTC) - _EPOCH).total_seconds())
    return _EPOCH + timedelta(seconds=elapsed - elapsed % period_seconds)


def tick_fact(
    trial_id: str, now: datetime, *, period_seconds: int
) -> tuple[ClockTicked, dict[str, Any]]:
    """The tick of `trial_id` for the boundary at or before `now`, and its wire form."""
    at = boundary(now, period_seconds)
    source_ref = f"tick:{trial_id}:{at.isoformat()}"
    fact = ClockTicked(
        event_id=event_id_for(SOURCE, source_ref, trial_id=trial_id, site_id=None),
        trial_id=trial_id,
        occurred_at=at,
        recorded_at=now,
        source=SOURCE,
        source_ref=source_ref,
        actor=ACTOR,
        payload={"period_seconds": period_seconds},
    )
    return fact, fact.model_dump(mode="json", exclude={"seq", "prev_hash", "hash"})
