"""Row helpers shared by the notify stores (adapters layer): batch splitting, outbox row shape."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from services.notify.core.plan import NotificationPlan
from services.notify.ports import NotificationRow, SignalNotifications, Status


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


def notification_row(  # noqa: PLR0913 - one keyword per outbox column
    plan: NotificationPlan,
    *,
    status: Status,
    attempts: int,
    intended_at: datetime,
    next_attempt_at: datetime | None,
    sent_at: datetime | None,
    smtp_reply: str | None,
    last_error: str | None,
    digest_key: str | None,
) -> NotificationRow:
    """Build the row every store returns from `notifications()` (times as ISO strings)."""
    return {
        "notification_id": str(plan.notification_id),
        "signal_id": str(plan.signal_id),
        "role": plan.role.value,
        "address": plan.address,
        "urgency": plan.urgency.value,
        "subject": plan.subject,
        "message_id": plan.message_id,
        "status": status,
        "attempts": attempts,
        "next_attempt_at": _iso(next_attempt_at),
        "smtp_reply": smtp_reply,
        "last_error": last_error,
        "intended_at": intended_at.isoformat(),
        "sent_at": _iso(sent_at),
        "digest_key": digest_key,
    }


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()
