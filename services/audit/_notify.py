"""The audit tools' one door into notify's routing (shell over the pure notify core).

Reconcile needs exactly what notify itself decides: which addresses a signal must reach under
a routing file, and the deterministic notification id of each (`plan_notifications`). Using
notify's own pure planner, not a copy of its rules, means reconcile checks the service
against its own routing, and follows it when the routing grows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from schemas import SignalRaised, SignalUpdated
from services.audit.errors import AuditError
from services.notify.core.errors import RoutingFileError
from services.notify.core.plan import plan_notifications
from services.notify.core.report import REPORT_PARTICIPANT
from services.notify.core.routing import Routing, parse_routing

__all__ = ["REPORT_PARTICIPANT", "Required", "RoutingError", "load_routing", "required"]


class RoutingError(AuditError):
    """The routing file for a reconcile cannot be read."""


@dataclass(frozen=True, slots=True)
class Required:
    """One notification a signal requires: its deterministic id and where it must go."""

    notification_id: str
    role: str
    address: str


def routing_path(path: Path | None = None) -> Path:
    """The routing file: `path`, else the one notify reads (env, then the demo file)."""
    if path is not None:
        return path
    configured = os.environ.get("SAFETYMON_ROUTING")
    if configured:
        return Path(configured)
    return Path(str(resources.files("tools.demo").joinpath("routing.toml")))


def load_routing(path: Path | None = None) -> Routing:
    """Read and validate the routing file in force.

    Raises:
        RoutingError: the file cannot be read or is not a valid routing file.

    """
    source = routing_path(path)
    try:
        return parse_routing(source.read_text(encoding="utf-8"), source=str(source))
    except OSError as exc:
        raise RoutingError(f"{source}: cannot read the routing file: {exc}") from exc
    except RoutingFileError as exc:
        raise RoutingError(str(exc)) from exc


def required(signal: SignalRaised | SignalUpdated, routing: Routing) -> tuple[Required, ...]:
    """Every notification notify must send about `signal` under `routing`."""
    return tuple(
        Required(str(plan.notification_id), plan.role.value, plan.address)
        for plan in plan_notifications(signal, routing)
    )
