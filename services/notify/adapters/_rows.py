"""Row helpers shared by the notify stores (adapters layer): batch splitting, outbox row shape."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from services.notify.core.plan import NotificationPlan
from services.notify.ports import SignalNotifications


def split_new(
    signals: Sequence[SignalNotifications], tracked: set[UUID]
) -> tuple[list[SignalNotifications], tuple[UUID, ...]]:
    """Separate a batch into new signals and duplicates (already tracked, or repeated)."""
    new: list[SignalNotifications] = []
    duplicates: list[UUID] = []
    seen: set[UUID] = set()
    for item in signals:
        if item.signal_id in tracked or item.signal_id in seen:
            duplicates.append(item.signal_id)
        else:
            seen.add(item.signal_id)
            new.append(item)
    return new, tuple(duplicates)


def notification_row(plan: NotificationPlan, **state: object) -> dict[str, Any]:
    """Build the plain-row shape every store returns from `notifications()`."""
    row: dict[str, Any] = {
        "notification_id": str(plan.notification_id),
        "signal_id": str(plan.signal_id),
        "role": plan.role.value,
        "address": plan.address,
        "urgency": plan.urgency.value,
        "subject": plan.subject,
        "message_id": plan.message_id,
    }
    for key, value in state.items():
        row[key] = value.isoformat() if isinstance(value, datetime) else value
    return row
