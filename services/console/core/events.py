"""One projected event: a fact, a signal or a notify fact, read from its wire form (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Source = Literal["fact", "signal", "notify"]
SOURCES: tuple[Source, ...] = ("fact", "signal", "notify")


@dataclass(frozen=True, slots=True)
class Event:
    """What the console keeps of one event; `body` is its whole wire form."""

    event_id: str
    source: Source
    event_type: str
    participant_id: str | None
    site_id: str | None
    occurred_at: datetime
    signal_id: str | None
    body: Mapping[str, Any]


def parse_event(source: Source, data: bytes) -> Event:
    """The event of one stream message.

    Raises:
        ValueError: not a JSON object with event_id, event_type and occurred_at.

    """
    body = json.loads(data)
    if not isinstance(body, dict):
        raise ValueError("an event is a JSON object")  # noqa: TRY004 - callers catch ValueError
    return Event(
        event_id=str(body["event_id"]),
        source=source,
        event_type=str(body["event_type"]),
        participant_id=body.get("participant_id"),
        site_id=body.get("site_id"),
        occurred_at=datetime.fromisoformat(str(body["occurred_at"])),
        signal_id=_signal_of(source, body),
        body=body,
    )


def _signal_of(source: Source, body: Mapping[str, Any]) -> str | None:
    if source == "signal":
        return str(body.get("signal_id") or body["event_id"])
    if source == "notify":
        payload = body.get("payload") or {}
        return str(payload["signal_id"]) if payload.get("signal_id") else None
    return None
