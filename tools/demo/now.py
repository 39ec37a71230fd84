"""The demo's "now": the one place the demo tooling reads the clock and the environment.

`SAFETYMON_DEMO_NOW` (ISO 8601 with an offset, e.g. 2026-03-02T09:30:00Z) replays a demo
as of a fixed moment: the same value gives the same feed, byte for byte.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

NOW_VARIABLE: Final = "SAFETYMON_DEMO_NOW"


def current_minute() -> datetime:
    """The current UTC time, rounded down to the minute (the feed's resolution)."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


def demo_now(environ: Mapping[str, str] | None = None) -> datetime:
    """`SAFETYMON_DEMO_NOW` when set, else the current minute.

    Raises:
        ValueError: The variable is not an ISO 8601 time with an offset (a time without
            one would depend on the machine's zone, and the feed would differ by it).

    """
    text = (os.environ if environ is None else environ).get(NOW_VARIABLE, "").strip()
    if not text:
        return current_minute()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        msg = f"{NOW_VARIABLE}={text!r} is not an ISO 8601 time"
        raise ValueError(msg) from exc
    if moment.utcoffset() is None:
        msg = f"{NOW_VARIABLE}={text!r} needs an offset, e.g. Z or +08:00"
        raise ValueError(msg)
    return moment.astimezone(UTC)
