"""Who may see and do what in the console (pure): exactly the APIs' rules.

Alerts, participants and the delivery log are read by `safety_officer`, `auditor`, `admin`
and an `investigator` for its own site only, as notify's GET /v1/notifications answers;
another site's participant or alert is "not found", never "forbidden", so an investigator
learns nothing about other sites. Acknowledging is offered to the roles notify's
POST /v1/signals/{id}/ack accepts; notify itself decides, per alert (core/authority.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

READERS: Final = frozenset({"safety_officer", "investigator", "auditor", "admin"})
ACKNOWLEDGERS: Final = frozenset({"safety_officer", "investigator", "dsmb", "admin"})
SITE_SCOPED: Final = frozenset({"investigator"})
#: Roles of the audit page (stream positions, notify's trail as published).
AUDITORS: Final = frozenset({"auditor", "admin"})
#: Roles that may sign in: every role but `submitter`, which only posts data.
CONSOLE_ROLES: Final = READERS | {"dsmb"}


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in principal: token name, role, and site for per-site roles."""

    name: str
    role: str
    site: str | None

    @property
    def reads_alerts(self) -> bool:
        """Whether the alert pages are open to this viewer at all."""
        return self.role in READERS

    @property
    def audits(self) -> bool:
        """Whether the audit page is open to this viewer."""
        return self.role in AUDITORS

    @property
    def may_acknowledge(self) -> bool:
        """Whether to offer the acknowledge form (notify checks the alert's own routing)."""
        return self.role in ACKNOWLEDGERS

    def sees(self, site_id: str | None) -> bool:
        """Whether a participant or alert of `site_id` exists for this viewer."""
        if not self.reads_alerts:
            return False
        return self.role not in SITE_SCOPED or (site_id is not None and site_id == self.site)
