"""Escalation of unacknowledged U0 alerts (pure core): when, to whom, with what message.

RULES.md §0.3: an unacknowledged U0 goes to the backup and the safety officer after the
escalation delay (default 60 min), then to the DSMB chair after twice the delay. The time
is passed in; the caller reads it from the notify clock port.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final
from uuid import UUID, uuid5

from schemas import AlertEscalated, Role, Urgency
from services.notify.core.plan import NotificationPlan, message_id_for
from services.notify.core.routing import Routing, addresses_of

#: Who each escalation level reaches, in order.
LEVELS: Final[dict[int, tuple[Role, ...]]] = {
    1: (Role.BACKUP, Role.SAFETY_OFFICER),
    2: (Role.DSMB_CHAIR,),
}


@dataclass(frozen=True, slots=True)
class AlertState:
    """What the escalation decision needs to know about one alert."""

    signal_id: UUID
    urgency: Urgency
    raised_at: datetime
    level: int = 0
    acknowledged: bool = False
    closed: bool = False


def due_level(alert: AlertState, *, now: datetime, delay: timedelta) -> int | None:
    """The escalation level due now, or None (acknowledged, closed, not U0, or not yet)."""
    if alert.acknowledged or alert.closed or alert.urgency is not Urgency.U0:
        return None
    level = alert.level + 1
    if level not in LEVELS or now < alert.raised_at + delay * level:
        return None
    return level


def escalation_plans(
    first: NotificationPlan, level: int, routing: Routing, *, delay: timedelta
) -> tuple[NotificationPlan, ...]:
    """Plan the level's emails as replies to `first` (the alert's first email)."""
    minutes = int(delay.total_seconds() // 60) * level
    waited = f"{minutes} min" if minutes else f"{int(delay.total_seconds()) * level} s"
    # The urgency tag stays first, so inbox rules and triage by "[U0 " keep working.
    tag_end = first.subject.find("]")
    head, rest = first.subject[: tag_end + 1], first.subject[tag_end + 1 :].lstrip()
    subject = f"{head[:-1]} ESCALATED L{level}] unacknowledged {waited} — {rest}"
    plans: dict[str, NotificationPlan] = {}
    for role in LEVELS[level]:
        for recipient in addresses_of(role, first.site_id, routing):
            notification_id = uuid5(first.signal_id, f"escalation:{level}:{recipient.address}")
            context = {**first.context, "role": recipient.role.value,
                       "escalation": {"level": level, "waited": waited},
                       "notes": [gap.note() for gap in recipient.gaps]}  # fmt: skip
            plans.setdefault(recipient.address.lower(), replace(
                first, notification_id=notification_id, role=recipient.role,
                address=recipient.address, subject=subject,
                message_id=message_id_for(notification_id),
                references=first.references or first.message_id, context=context,
                gaps=recipient.gaps, page_key=None,
            ))  # fmt: skip
    return tuple(plans.values())


def escalated_fact(first: NotificationPlan, level: int, *, now: datetime) -> AlertEscalated:
    """The AlertEscalated fact recorded with the level's intended emails."""
    return AlertEscalated(
        event_id=uuid5(first.signal_id, f"escalated:{level}"),
        trial_id=first.trial_id,
        site_id=first.site_id,
        participant_id=first.participant_id,
        occurred_at=now,
        recorded_at=now,
        source="notify",
        source_ref=f"{first.signal_id}:escalated:{level}",
        actor="safetymon-notify",
        causation_id=first.signal_id,
        correlation_id=first.correlation_id,
        payload={"signal_id": first.signal_id, "level": level, "to_roles": LEVELS[level]},
    )
