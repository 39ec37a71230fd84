"""Who may acknowledge an alert over the HTTP API (pure core).

An acknowledgement stops a U0 alert's escalation, so only someone the alert was meant for
may give it: a token whose role is one of the roles the alert was routed to (the roles of
its recorded notifications: the routing file's choice, routing-gap fallbacks and
escalations), a per-site role (investigator) only for its own site's alerts, and admin.

Token roles name people, routing roles name mailboxes: a `safety_officer` token stands for
the safety officer and the backup who deputises for them (escalation level 1), a `dsmb`
token for the DSMB and its chair. `submitter` and `auditor` tokens acknowledge nothing.

Another site's alert is answered as one that does not exist (`hidden`), so an investigator
learns nothing about other sites; a trial-wide alert (a DSMB report, site "ALL") names no
site and is refused with the reason (`forbidden`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from schemas import Role

#: Token role (kit/auth.py `Role` values) -> the routing roles it acknowledges as.
ACTS_AS: Final[Mapping[str, frozenset[Role]]] = {
    "safety_officer": frozenset({Role.SAFETY_OFFICER, Role.BACKUP}),
    "investigator": frozenset({Role.INVESTIGATOR}),
    "dsmb": frozenset({Role.DSMB, Role.DSMB_CHAIR}),
}
#: Token roles held to one site.
SITE_SCOPED: Final = frozenset({"investigator"})
ADMIN: Final = "admin"
#: The site of alerts about no site (DSMB report announcements; core/report.py).
TRIAL_WIDE: Final = "ALL"


@dataclass(frozen=True, slots=True)
class Audience:
    """Where an alert belongs and every role its notifications were addressed to."""

    site_id: str
    roles: frozenset[Role]


@dataclass(frozen=True, slots=True)
class AckRefusal:
    """Why a caller may not acknowledge: `hidden` (answer as unknown) or `forbidden`."""

    kind: Literal["hidden", "forbidden"]
    reason: str = ""


def audience_of(rows: Iterable[Mapping[str, Any]]) -> Audience | None:
    """The audience from a signal's delivery log rows; None when it has no notifications."""
    roles: set[Role] = set()
    site: str | None = None
    for row in rows:
        if row.get("event_type") == "notification_intended" and row.get("role") in _ROLES:
            roles.add(Role(row["role"]))
            site = site or row.get("site_id")
    return Audience(site, frozenset(roles)) if site is not None and roles else None


def ack_refusal(role: str, site: str | None, audience: Audience | None) -> AckRefusal | None:
    """None when a token of `role` (and `site`) may acknowledge an alert with `audience`."""
    if role == ADMIN:
        return None
    if audience is None:
        return AckRefusal("hidden")
    if role in SITE_SCOPED and audience.site_id not in (site, TRIAL_WIDE):
        return AckRefusal("hidden")
    if ACTS_AS.get(role, frozenset()) & audience.roles:
        return None
    routed = ", ".join(sorted(r.value for r in audience.roles))
    return AckRefusal(
        "forbidden",
        f"role {role} may not acknowledge this alert: it was routed to {routed}"
        " (admin may acknowledge any alert)",
    )


_ROLES: Final = frozenset(r.value for r in Role)
