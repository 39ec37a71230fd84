"""Where the demo feed sits in time: from a pinned start, or ending at `now` (pure).

Every time in the generator is a whole number of minutes after the feed's start, and the
cohort plan puts visits at Shanghai times of day. Moving the start by whole days therefore
moves the same history by whole days: the feed for any `now` is the historic feed shifted
to end at `now`, then cut at `now` (what a running trial has sent so far).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from tools.demo._clock import DAY

#: Where the feed started before it ended at "now"; golden histories recorded against fixed
#: 2024 dates pin it (`start=HISTORIC_START`) and stay byte for byte what they were.
HISTORIC_START: Final = datetime(2024, 1, 8, tzinfo=UTC)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Placement:
    """The feed's first day, and the last minute after it a submission may be sent."""

    start: datetime
    cut: int | None  # None: every submission, however late


def pinned(start: datetime) -> Placement:
    """The feed starts at `start` and is never cut."""
    return Placement(start, None)


def ending_at(now: datetime, *, follow_up_end: int) -> Placement:
    """Shift the historic start by whole days so follow-up ends within a day after `now`.

    Nothing after `now` is sent: the tail (the last participant's last visits, results not
    back yet, late blood cultures) is what a running trial has not received.

    Args:
        now: The moment the feed ends at (aware; seconds are ignored).
        follow_up_end: Minutes after the start at which the last follow-up ends.

    """
    if now.utcoffset() is None:
        msg = "now must be timezone-aware"
        raise ValueError(msg)
    historic, current = _minutes(HISTORIC_START), _minutes(now)
    days = -((historic + follow_up_end - current) // DAY)  # ceiling division
    start = HISTORIC_START + timedelta(days=days)
    return Placement(start, current - _minutes(start))


def _minutes(moment: datetime) -> int:
    return int((moment - _EPOCH).total_seconds()) // 60
