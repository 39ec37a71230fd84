"""Integer-minute time base of the demo feed and fast ISO 8601 formatting (demo tooling)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

MINUTE: Final = 1
HOUR: Final = 60
DAY: Final = 24 * HOUR
#: Asia/Shanghai has no daylight saving time: always UTC+08:00.
SHANGHAI_OFFSET: Final = 8 * HOUR
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class Clock:
    """Turn minutes since the feed start into ISO 8601 strings, in UTC or Asia/Shanghai.

    Everything in the generator is an integer number of minutes after `start`; formatting
    caches the date part per day, which keeps a million timestamps cheap.
    """

    __slots__ = ("_base", "_dates", "_local_midnight")

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            msg = "start must be timezone-aware"
            raise ValueError(msg)
        self._base = int((start - _EPOCH).total_seconds()) // 60
        self._dates: dict[int, str] = {}
        # Minute (relative to start) of the Shanghai midnight that opens the start day.
        self._local_midnight = -((self._base + SHANGHAI_OFFSET) % DAY)

    def local_midnight(self, day: int) -> int:
        """Minute of the Shanghai midnight `day` days after the start day."""
        return self._local_midnight + day * DAY

    def _date(self, day_number: int) -> str:
        text = self._dates.get(day_number)
        if text is None:
            text = (date(1970, 1, 1) + timedelta(days=day_number)).isoformat()
            self._dates[day_number] = text
        return text

    def utc(self, minute: int) -> str:
        """Format as UTC with a "Z" suffix."""
        day, rest = divmod(self._base + minute, DAY)
        hour, mins = divmod(rest, HOUR)
        return f"{self._date(day)}T{hour:02d}:{mins:02d}:00Z"

    def shanghai(self, minute: int) -> str:
        """Format as Asia/Shanghai local time with a "+08:00" offset."""
        day, rest = divmod(self._base + minute + SHANGHAI_OFFSET, DAY)
        hour, mins = divmod(rest, HOUR)
        return f"{self._date(day)}T{hour:02d}:{mins:02d}:00+08:00"

    def iso(self, minute: int, *, local: bool) -> str:
        """Format in Shanghai local time when `local`, else in UTC."""
        return self.shanghai(minute) if local else self.utc(minute)

    def ref(self, minute: int) -> str:
        """Shanghai wall-clock time to the minute, as source systems put it in record ids."""
        day, rest = divmod(self._base + minute + SHANGHAI_OFFSET, DAY)
        hour, mins = divmod(rest, HOUR)
        return f"{self._date(day)}T{hour:02d}:{mins:02d}"

    def stamps(self, minute: int, *, local: bool) -> tuple[str, str]:
        """Return `iso(minute, local=local)` and `ref(minute)` together, cheaply."""
        day, rest = divmod(self._base + minute + SHANGHAI_OFFSET, DAY)
        hour, mins = divmod(rest, HOUR)
        dates = self._dates
        text = dates.get(day) or self._date(day)
        ref = f"{text}T{hour:02d}:{mins:02d}"
        if local:
            return f"{ref}:00+08:00", ref
        if hour >= 8:  # same calendar day in UTC
            return f"{text}T{hour - 8:02d}:{mins:02d}:00Z", ref
        before = dates.get(day - 1) or self._date(day - 1)
        return f"{before}T{hour + 16:02d}:{mins:02d}:00Z", ref

    def is_on_grid(self, minute: int) -> bool:
        """Whether a minute falls on the 5-minute grid that scheduled observations use."""
        return (minute - self._local_midnight) % 5 == 0


@dataclass(frozen=True, slots=True)
class FeedContext:
    """What every participant stream shares."""

    clock: Clock
    trial_id: str
    weeks: int
    blood_cultures: bool
