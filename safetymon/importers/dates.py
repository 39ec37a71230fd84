"""ISO 8601 dates as sources send them (possibly partial, often without a zone), completed (pure).

The rule, stated on every event in `occurred_at_as_reported`: a missing month, day or time is
set to the first possible value (`start_of_period`), and a value without an offset is read in
the study's configured time zone. An earliest-instant rule keeps an AE with onset `2014-03`
inside any window that starts in March, which is how CDISC ADaM imputes AE onset for
treatment emergence as well.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final
from zoneinfo import ZoneInfo

from safetymon.importers._types import MappingError

_ISO: Final = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2})(?::(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<frac>\d+))?)?)?)?)?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?$"
)
_PRECISIONS: Final = ("year", "month", "day", "hour", "minute", "second")


def complete(value: str, *, field: str, zone: ZoneInfo) -> tuple[datetime, dict[str, Any]]:
    """Return the completed UTC instant and the `ReportedTime` dict describing how.

    Raises:
        MappingError: the value is empty or not ISO 8601 (which SDTM's `--DTC` must be).

    """
    text = value.strip()
    match = _ISO.fullmatch(text)
    if not text:
        raise MappingError(field, "no date given")
    if match is None:
        raise MappingError(field, f"{text!r} is not an ISO 8601 date or date-time")
    parts = match.groupdict()
    precision = [name for name in _PRECISIONS if parts[name] is not None][-1]
    try:
        naive = datetime(
            int(parts["year"]),
            int(parts["month"] or 1),
            int(parts["day"] or 1),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            int((parts["frac"] or "0")[:6].ljust(6, "0")),
        )
    except ValueError as exc:
        raise MappingError(field, f"{text!r} is not a calendar date ({exc})") from exc
    reported: dict[str, Any] = {
        "as_reported": text,
        "precision": precision,
        "imputation": "none" if precision in ("minute", "second") else "start_of_period",
    }
    if parts["zone"] is None:
        reported["timezone_assumed"] = zone.key
        aware = naive.replace(tzinfo=zone)
    else:
        aware = naive.replace(tzinfo=_offset(parts["zone"]))
    return aware.astimezone(UTC), reported


def _offset(text: str) -> timezone:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def iso_utc(instant: datetime) -> str:
    """The wire spelling of an instant (UTC, `Z`)."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")
