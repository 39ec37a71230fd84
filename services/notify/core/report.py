"""DSMB report announcements (pure core): who hears about a `ReportIssued`, and what it says.

The scheduled (monthly) and ad hoc (a stopping rule newly triggered) DSMB
reports are emailed to the DSMB through notify's outbox. The email carries no participant
data: the as-of time, the log position and chain head the report was built from, the
stopping rules that triggered with their numbers, randomised and deaths per arm, and a link
to the report on the report service's HTTP API (DSMB token needed).

A report announcement never waits for the weekly U3 digest: the report *is* the periodic
DSMB communication that U3 signals wait for (RULES.md §0.3), so holding it for a digest
would only delay it by up to a week and bury it among signals.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from schemas import ReportIssued, Role, Urgency
from services.notify.core.plan import (
    NotificationPlan,
    message_id_for,
    notification_id_for,
    one_line,
)
from services.notify.core.routing import Recipient, Routing, addresses_of

REPORT_TEMPLATE: Final = "report_issued"
#: The outbox and trail need a site and a participant code: a report concerns neither.
REPORT_SITE: Final = "ALL"
REPORT_PARTICIPANT: Final = "DSMB-REPORT"
#: "STOP-02.B.28d.triggered" -> rule, arm, optional window (days), measure.
_STOPS_IN_SUBJECT: Final = 4  # a subject line stays readable; the body lists them all
_NUMBER_KEY = re.compile(r"^(STOP-\d+)\.([A-Za-z0-9_-]+)(?:\.(\d+)d)?\.(\w+)$")


@dataclass(frozen=True, slots=True)
class ReportRoute:
    """Who a kind of report goes to, how urgently, and whether it is acknowledged."""

    roles: tuple[Role, ...]
    urgency: Urgency
    label: str
    #: An ad hoc report means a stopping rule newly triggered: a U0 that is acknowledged and
    #: escalates like any U0 alert (STOP-01/02/04 have no signal of their own: the report
    #: computes them, so this email is their only alert).
    wants_ack: bool


PERIODIC: Final = ReportRoute((Role.DSMB, Role.DSMB_CHAIR), Urgency.U3, "periodic", False)
AD_HOC: Final = ReportRoute((Role.DSMB_CHAIR, Role.SAFETY_OFFICER), Urgency.U0, "ad hoc", True)
#: Report kinds the report service publishes (safetymon/report_cli.py `Kind`).
ROUTES: Final[Mapping[str, ReportRoute]] = {"dsmb_periodic": PERIODIC, "dsmb_ad_hoc": AD_HOC}


def route_for(kind: str) -> ReportRoute:
    """The route of a report kind; an unknown kind goes to the DSMB like a periodic report.

    A newer report service may publish a kind this notify does not know: the DSMB still
    receives it rather than the announcement being dead-lettered.
    """
    return ROUTES.get(kind, PERIODIC)


def report_recipients(route: ReportRoute, routing: Routing) -> tuple[Recipient, ...]:
    """Every address of the route's roles, whatever urgencies the routing file lists.

    A report is an explicit decision to reach the DSMB (as escalation is), so a role's
    urgency filter does not apply; a role with no entry falls back to the safety officer
    with a note, as for signals.
    """
    chosen: dict[str, Recipient] = {}
    for role in route.roles:
        for recipient in addresses_of(role, REPORT_SITE, routing):
            chosen.setdefault(recipient.address.lower(), recipient)
    return tuple(chosen.values())


def plan_report(
    fact: ReportIssued, routing: Routing, *, reports_base_url: str | None
) -> tuple[NotificationPlan, ...]:
    """Plan one immediate email per recipient; ids follow the report id (its event id)."""
    route = route_for(fact.payload.report_kind)
    context = report_context(fact, route=route, reports_base_url=reports_base_url)
    subject = report_subject(fact, route=route, triggered=context["triggered"])
    plans = []
    for recipient in report_recipients(route, routing):
        notification_id = notification_id_for(fact.event_id, recipient.role, recipient.address)
        notes = [gap.note() for gap in recipient.gaps]
        plans.append(
            NotificationPlan(
                notification_id=notification_id, signal_id=fact.event_id,
                trial_id=fact.trial_id, site_id=REPORT_SITE,
                participant_id=REPORT_PARTICIPANT, role=recipient.role,
                address=recipient.address, urgency=route.urgency, subject=subject,
                message_id=message_id_for(notification_id), template=REPORT_TEMPLATE,
                context={**context, "role": recipient.role.value, "notes": notes},
                correlation_id=fact.correlation_id, gaps=recipient.gaps,
            )
        )  # fmt: skip
    return tuple(plans)


def report_subject(
    fact: ReportIssued, *, route: ReportRoute, triggered: list[dict[str, str]]
) -> str:
    """Inbox-triage subject: urgency, kind, trial, as-of, and what triggered."""
    tag = f"{route.urgency.value} DSMB {route.label.upper()} REPORT"
    if triggered:
        stops = ", ".join(f"{t['rule']} arm {t['arm']}" for t in triggered[:_STOPS_IN_SUBJECT])
        more = " …" if len(triggered) > _STOPS_IN_SUBJECT else ""
        finding = f"STOPPING RULE TRIGGERED: {stops}{more}"
    else:
        finding = "no stopping rule triggered"
    as_of = _format_utc(fact.occurred_at)
    return one_line(f"[{tag}] {fact.trial_id} — as of {as_of} — {finding}")


def report_context(
    fact: ReportIssued, *, route: ReportRoute, reports_base_url: str | None
) -> dict[str, Any]:
    """JSON-ready template context: the report's provenance and headline numbers only."""
    payload = fact.payload
    path = f"/v1/reports/{fact.event_id}/dsmb_report.html"
    return {
        "kind": "report",
        "signal_id": str(fact.event_id),
        "report_id": str(fact.event_id),
        "report_kind": payload.report_kind,
        "report_label": route.label,
        "urgency": route.urgency.value,
        "trial_id": fact.trial_id,
        "as_of": _format_utc(fact.occurred_at),
        "issued_at": _format_utc(fact.recorded_at),
        "log_position": payload.log_position,
        "chain_head": payload.chain_head,
        "stops_triggered": int(payload.numbers.get("stops_triggered", 0)),
        "triggered": triggered_stops(payload.numbers),
        "arms": arm_counts(payload.numbers),
        "report_url": f"{reports_base_url.rstrip('/')}{path}" if reports_base_url else None,
        "report_path": path,
    }


def triggered_stops(numbers: Mapping[str, float]) -> list[dict[str, str]]:
    """The stopping rules marked triggered (== 1.0), with their probability and events."""
    found = []
    for key, value in sorted(numbers.items()):
        match = _NUMBER_KEY.match(key)
        if match is None or match.group(4) != "triggered" or value != 1.0:
            continue
        rule, arm, window = match.group(1), match.group(2), match.group(3)
        stem = key.removesuffix(".triggered")
        probability = numbers.get(f"{stem}.probability")
        events = numbers.get(f"{stem}.events")
        found.append({
            "rule": rule, "arm": arm, "window": f"{window} days" if window else "—",
            "probability": "—" if probability is None else f"{probability:.4f}",
            "events": "—" if events is None else _count(events),
        })  # fmt: skip
    return found


def arm_counts(numbers: Mapping[str, float]) -> list[dict[str, str]]:
    """Randomised and deaths per arm, in arm order."""
    arms = sorted({k.split(".", 1)[1] for k in numbers if k.startswith(("randomised.", "deaths."))})
    return [
        {
            "arm": arm,
            "randomised": _count(numbers.get(f"randomised.{arm}")),
            "deaths": _count(numbers.get(f"deaths.{arm}")),
        }
        for arm in arms
    ]


def _count(value: float | None) -> str:
    if value is None:
        return "—"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _format_utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
