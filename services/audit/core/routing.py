"""What notify must send about a signal, by notify's own pure planner (no copy of its rules).

Reconcile needs exactly what notify itself decides: which addresses a signal must reach under
a routing file, and the deterministic notification id of each (`plan_notifications`). Using
notify's own planner, through its published module, means reconcile checks the service
against its own routing, and follows it when the routing grows.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import SignalRaised, SignalUpdated
from services.notify.published.model import REPORT_PARTICIPANT, Routing, plan_notifications

__all__ = ["REPORT_PARTICIPANT", "Required", "Routing", "required"]


@dataclass(frozen=True, slots=True)
class Required:
    """One notification a signal requires: its deterministic id and where it must go."""

    notification_id: str
    role: str
    address: str


def required(signal: SignalRaised | SignalUpdated, routing: Routing) -> tuple[Required, ...]:
    """Every notification notify must send about `signal` under `routing`."""
    return tuple(
        Required(str(plan.notification_id), plan.role.value, plan.address)
        for plan in plan_notifications(signal, routing)
    )
