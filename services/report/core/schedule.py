"""When the DSMB gets a report (core layer; pure): monthly, and ad hoc after a STOP trigger.

RULES.md §8.1 cadence [DC]: a periodic report at each scheduled slot (day and hour of every
month, UTC), and an ad hoc report as soon as a stopping rule is newly triggered, which the
scheduler's tick interval (≤ 24 h) turns into "within 24 h". A trigger already announced is
not announced again; a trigger that clears and returns is new again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from services.report.core.config import Schedule


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """What has been issued: the last periodic slot, and the triggers already announced."""

    last_periodic: datetime | None = None
    announced: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Due:
    """A report to issue now: its kind, its as-of time and why."""

    kind: str
    as_of: datetime
    reason: str


def latest_slot(now: datetime, schedule: Schedule) -> datetime:
    """The most recent scheduled time at or before `now` (day capped at 28 for February)."""
    day = min(schedule.day_of_month, 28)
    at = now.astimezone(UTC)
    slot = datetime(at.year, at.month, day, schedule.hour_utc, tzinfo=UTC)
    if slot <= at:
        return slot
    year, month = (at.year, at.month - 1) if at.month > 1 else (at.year - 1, 12)
    return datetime(year, month, day, schedule.hour_utc, tzinfo=UTC)


def plan(
    now: datetime, state: ScheduleState, triggered: frozenset[str], schedule: Schedule
) -> tuple[tuple[Due, ...], ScheduleState]:
    """Decide which reports are due at `now`, given the stops triggered as of `now`.

    Returns the reports to issue, in order, and the state once they have been issued.
    """
    due: list[Due] = []
    slot = latest_slot(now, schedule)
    if state.last_periodic is None or state.last_periodic < slot:
        due.append(Due("dsmb_periodic", slot, f"monthly report for {slot:%Y-%m}"))
        state = replace(state, last_periodic=slot)
    new = sorted(triggered - state.announced)
    if new:
        due.append(Due("dsmb_ad_hoc", now, "newly triggered: " + ", ".join(new)))
    # Only current triggers are remembered, so one that clears and comes back is announced.
    return tuple(due), replace(state, announced=frozenset(triggered))
