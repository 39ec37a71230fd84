"""Who is told about a signal, how and when (pure core), for `safetymon routes test`.

It reuses the planner and the escalation levels, so it shows what the service would do.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import SignalRaised, SignalUpdated, Urgency
from services.notify.core.escalation import LEVELS
from services.notify.core.plan import plan_notifications
from services.notify.core.routing import Routing, addresses_of

_WHEN = {
    Urgency.U0: "immediately, acknowledgement requested",
    Urgency.U1: "immediately (review within 24 h), acknowledgement requested",
    Urgency.U2: "in the next daily digest (SAFETYMON_DIGEST_HOUR, default 08:00 local)",
    Urgency.U3: "in the weekly DSMB digest (U3 normally reaches the DSMB by report)",
}


@dataclass(frozen=True, slots=True)
class RouteRow:
    """One line of the answer: when, which role, which address, and why."""

    when: str
    role: str
    address: str
    note: str = ""


def describe_routes(
    signal: SignalRaised | SignalUpdated, routing: Routing, *, escalation_minutes: float
) -> tuple[RouteRow, ...]:
    """The first emails, then (for U0) each escalation level unless acknowledged first."""
    urgency = signal.payload.urgency
    rows = [
        RouteRow(_WHEN[urgency], plan.role.value, plan.address, " ".join(plan.context["notes"]))
        for plan in plan_notifications(signal, routing)
    ]
    retracted = isinstance(signal, SignalUpdated) and signal.status == "retracted"
    if urgency is Urgency.U0 and not retracted:
        for level, roles in LEVELS.items():
            when = f"after {escalation_minutes * level:g} min if unacknowledged (level {level})"
            for role in roles:
                rows.extend(
                    RouteRow(when, r.role.value, r.address, "escalation")
                    for r in addresses_of(role, signal.site_id, routing)
                )
    if not rows:
        rows.append(RouteRow("never", "-", "-", "no role in the routing file accepts this urgency"))
    return tuple(rows)
