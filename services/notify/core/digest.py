"""Digests (pure core): U2 signals in one daily email per recipient, U3 in a weekly DSMB digest.

RULES.md §0.3: U2 is a daily digest at 08:00 Asia/Shanghai, so quiet hours concern U2 only;
U0 and U1 always go out at once. U3 normally reaches the DSMB through the periodic report;
a role that asks for U3 by email gets it in a weekly digest. The time zone is passed in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal
from uuid import UUID, uuid5

from schemas import Urgency
from services.notify.core.plan import NotificationPlan, message_id_for

DigestKind = Literal["daily", "dsmb"]
DIGEST_TEMPLATE = "digest"
_NAMESPACE = UUID("5b0e7c1e-4a51-4d8e-9a07-4f1b5d2c9e10")  # digest ids; never change it
_CODES_SHOWN = 6
_KINDS: dict[Urgency, DigestKind] = {Urgency.U2: "daily", Urgency.U3: "dsmb"}


@dataclass(frozen=True, slots=True)
class DigestSchedule:
    """When digests go out: the local hour, the zone, and the DSMB digest's weekday (0 = Mon)."""

    tz: tzinfo
    hour: int = 8
    dsmb_weekday: int = 0

    def due_after(self, kind: DigestKind, now: datetime) -> datetime:
        """The first digest time of this kind strictly after `now`."""
        local = now.astimezone(self.tz)
        due = local.replace(hour=self.hour, minute=0, second=0, microsecond=0)
        if due <= local:
            due += timedelta(days=1)
        if kind == "dsmb":
            due += timedelta(days=(self.dsmb_weekday - due.weekday()) % 7)
        return due


def into_digest(
    plan: NotificationPlan, schedule: DigestSchedule, *, now: datetime
) -> NotificationPlan:
    """Hold a U2/U3 plan for its recipient's next digest; U0/U1 plans stay immediate."""
    kind = _KINDS.get(plan.urgency)
    if kind is None:
        return plan
    due = schedule.due_after(kind, now)
    key = f"{kind}:{plan.address.lower()}:{due.isoformat()}"
    return replace(plan, digest_key=key, not_before=due)


def digest_plan(items: Sequence[NotificationPlan]) -> NotificationPlan:
    """One email for the items of one digest (same key); ids follow the items it holds.

    The Message-ID hashes the item ids, so a resend of the same digest folds into it while
    a digest with other items (say, after a crash split one) never hides behind it.
    """
    first = items[0]
    # key = "<kind>:<address>:<due, ISO 8601 local>"; an address holds no colon.
    kind, _address, due = (first.digest_key or "daily::").split(":", 2)
    members = sorted(str(item.notification_id) for item in items)
    digest_id = uuid5(_NAMESPACE, hashlib.sha256("|".join(members).encode()).hexdigest())
    label = "DSMB DIGEST" if kind == "dsmb" else "DIGEST"
    day = due[:10]
    codes = sorted({item.participant_id for item in items})
    shown = ", ".join(codes[:_CODES_SHOWN]) + (" …" if len(codes) > _CODES_SHOWN else "")
    count = f"{len(items)} signal{'s' if len(items) != 1 else ''}"
    subject = f"[{first.urgency.value} {label}] {count}: {shown} — {first.trial_id} — {day}"
    return replace(
        first, notification_id=digest_id, signal_id=digest_id, subject=subject,
        message_id=message_id_for(digest_id), template=DIGEST_TEMPLATE, references=None,
        site_id="ALL", participant_id="DIGEST", digest_key=None, not_before=None,
        correlation_id=None,  # a digest is about several alerts, not the first one's
        context={"kind": kind, "day": day, "role": first.role.value,
                 "items": [_item(item) for item in items]},
    )  # fmt: skip


def _item(plan: NotificationPlan) -> dict[str, Any]:
    context = plan.context
    keys = ("signal_id", "participant_id", "site_id", "category", "title", "reason", "rule",
            "occurred_at", "kind")  # fmt: skip
    return {key: context.get(key) for key in keys}
