"""What follows a permanent delivery failure (pure core): the next route and an alarm.

A 5xx reply means this address will never take the message. The same message goes to the
backup role (the next route), and the safety officer is told which address refused what,
so a bouncing mailbox is fixed instead of silently losing alerts. Follow-ups of follow-ups
stop after one step, so a bouncing safety officer cannot loop.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final
from uuid import uuid5

from schemas import Role
from services.notify.core.plan import NotificationPlan, message_id_for, one_line
from services.notify.core.routing import Routing, addresses_of

DELIVERY_FAILURE_TEMPLATE: Final = "delivery_failure"
_ERROR_SHOWN = 200


def failover_plans(
    failed: NotificationPlan, routing: Routing, *, error: str
) -> tuple[NotificationPlan, ...]:
    """The next route's copy (backup) and the delivery-failure alert to the safety officer."""
    if failed.template == DELIVERY_FAILURE_TEMPLATE or failed.context.get("failover_of"):
        return ()
    plans: dict[str, NotificationPlan] = {}
    if failed.role is not Role.BACKUP:
        for recipient in addresses_of(Role.BACKUP, failed.site_id, routing):
            if recipient.address.lower() == failed.address.lower():
                continue
            nid = uuid5(failed.notification_id, f"failover:{recipient.address}")
            context = {**failed.context, "role": Role.BACKUP.value,
                       "failover_of": failed.role.value}  # fmt: skip
            plans[recipient.address.lower()] = replace(
                failed, notification_id=nid, role=Role.BACKUP, address=recipient.address,
                message_id=message_id_for(nid), context=context, gaps=(),
                digest_key=None, not_before=None, page_key=None,
            )  # fmt: skip
    for alarm in _alarms(failed, routing, error=error):
        plans.setdefault(f"alarm:{alarm.address.lower()}", alarm)
    return tuple(plans.values())


def _alarms(
    failed: NotificationPlan, routing: Routing, *, error: str
) -> tuple[NotificationPlan, ...]:
    officers = routing.roles[Role.SAFETY_OFFICER].addresses
    tag = f"[{failed.urgency.value} DELIVERY FAILED]"
    subject = one_line(f"{tag} {failed.role.value} {failed.address}: {failed.subject}")
    context = {
        "signal_id": str(failed.signal_id),
        "failed_role": failed.role.value,
        "failed_address": failed.address,
        "failed_subject": failed.subject,
        "error": one_line(error)[:_ERROR_SHOWN],
        "participant_id": failed.participant_id,
        "site_id": failed.site_id,
        "urgency": failed.urgency.value,
        "role": Role.SAFETY_OFFICER.value,
    }
    alarms = []
    for address in officers:
        nid = uuid5(failed.notification_id, f"delivery-failure:{address}")
        alarms.append(replace(
            failed, notification_id=nid, role=Role.SAFETY_OFFICER, address=address,
            subject=subject, message_id=message_id_for(nid), template=DELIVERY_FAILURE_TEMPLATE,
            context=context, references=None, gaps=(), digest_key=None, not_before=None,
            page_key=None,
        ))  # fmt: skip
    return tuple(alarms)
