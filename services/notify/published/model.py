"""Notify's routing, planner and journal entry type, as the audit's reconcile uses them."""

from __future__ import annotations

from services.notify.core.errors import RoutingFileError
from services.notify.core.plan import plan_notifications
from services.notify.core.report import REPORT_PARTICIPANT
from services.notify.core.routing import Routing, parse_routing
from services.notify.ports import JournaledSend

__all__ = [
    "REPORT_PARTICIPANT",
    "JournaledSend",
    "Routing",
    "RoutingFileError",
    "parse_routing",
    "plan_notifications",
]
