"""Alerts from signals and notify's facts (pure): state, order, countdown, filters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from services.console.core.events import Event

URGENCY_RANK: Mapping[str, int] = {"U0": 0, "U1": 1, "U2": 2, "U3": 3}


@dataclass(frozen=True, slots=True)
class Alert:
    """One signal as the inbox shows it."""

    signal_id: str
    participant_id: str
    site_id: str
    urgency: str
    category: str
    rule: str
    title: str
    reason: str
    raised_at: datetime
    values: Mapping[str, Any]
    evidence: tuple[str, ...]
    deadline: datetime | None = None
    deadline_label: str | None = None
    retracted: bool = False
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    escalation_level: int = 0
    emails_sent: int = 0
    emails_failed: int = 0
    log: tuple[Event, ...] = field(default=())

    @property
    def state(self) -> str:
        """`open`, `acknowledged` or `retracted`."""
        if self.retracted:
            return "retracted"
        return "acknowledged" if self.acknowledged_by else "open"


def _from_signal(event: Event) -> Alert:
    payload = event.body["payload"]
    deadline = payload.get("reporting_deadline")
    return Alert(
        signal_id=str(event.signal_id),
        participant_id=str(event.participant_id),
        site_id=str(event.site_id),
        urgency=payload["urgency"],
        category=payload["category"],
        rule=f"{payload['rule_id']} v{payload['rule_version']}",
        title=payload["title"],
        reason=payload["reason"],
        raised_at=event.occurred_at,
        values=payload.get("values", {}),
        evidence=tuple(payload.get("evidence_event_ids", ())),
        deadline=datetime.fromisoformat(deadline) if deadline else None,
        deadline_label=payload.get("deadline_label"),
    )


def _updated(alert: Alert, event: Event) -> Alert:
    if event.body.get("status") == "retracted":
        return replace(alert, retracted=True)
    fresh = _from_signal(event)
    return replace(fresh, raised_at=alert.raised_at, log=alert.log)


def _delivered(alert: Alert, event: Event) -> Alert:
    payload = event.body.get("payload", {})
    log = (*alert.log, event)
    kind = event.event_type
    if kind == "alert_acknowledged":
        return replace(
            alert, log=log, acknowledged_by=payload.get("by"), acknowledged_at=event.occurred_at
        )
    if kind == "alert_escalated":
        level = max(alert.escalation_level, int(payload.get("level", 0)))
        return replace(alert, log=log, escalation_level=level)
    if kind == "notification_sent":
        return replace(alert, log=log, emails_sent=alert.emails_sent + 1)
    if kind == "notification_failed":
        return replace(alert, log=log, emails_failed=alert.emails_failed + 1)
    return replace(alert, log=log)


def fold_alerts(events: Iterable[Event]) -> dict[str, Alert]:
    """Alerts by signal id from signals and notify facts in arrival order."""
    alerts: dict[str, Alert] = {}
    early: dict[str, list[Event]] = {}
    for event in events:
        sid = event.signal_id
        if sid is None:
            continue
        if event.source == "signal":
            known = alerts.get(sid)
            alerts[sid] = _from_signal(event) if known is None else _updated(known, event)
            for waiting in early.pop(sid, []):
                alerts[sid] = _delivered(alerts[sid], waiting)
        elif sid in alerts:
            alerts[sid] = _delivered(alerts[sid], event)
        else:  # notify's stream may run ahead of the signals stream
            early.setdefault(sid, []).append(event)
    return alerts


def inbox_order(alerts: Iterable[Alert]) -> list[Alert]:
    """Open first, then U0, U1, ...; the nearest deadline first; then the newest."""

    def key(alert: Alert) -> tuple[int, int, float, float]:
        deadline = alert.deadline.timestamp() if alert.deadline else float("inf")
        return (
            0 if alert.state == "open" else 1,
            URGENCY_RANK.get(alert.urgency, 9),
            deadline,
            -alert.raised_at.timestamp(),
        )

    return sorted(alerts, key=key)


def countdown(deadline: datetime | None, now: datetime) -> tuple[str, bool]:
    """("report due in 3 h 12 min", False) or ("overdue by 25 min", True); ("", False) if none."""
    if deadline is None:
        return "", False
    seconds = int((deadline - now).total_seconds())
    span = _span(abs(seconds))
    return (f"overdue by {span}", True) if seconds < 0 else (f"report due in {span}", False)


def _span(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


@dataclass(frozen=True, slots=True)
class Filters:
    """Inbox filters; an empty value matches everything."""

    urgency: str = ""
    category: str = ""
    site: str = ""
    participant: str = ""
    state: str = ""

    def matches(self, alert: Alert) -> bool:
        """Whether `alert` passes every filter that is set."""
        wanted = (
            (self.urgency, alert.urgency),
            (self.category, alert.category),
            (self.site, alert.site_id),
            (self.participant, alert.participant_id),
            (self.state, alert.state),
        )
        return all(not want or want == have for want, have in wanted)
