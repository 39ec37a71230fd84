"""Builders for notify tests: signals and routing files (import as tests.unit.notify.factories)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from schemas import Role, SignalPayload, SignalRaised, SignalUpdated, Urgency
from services.notify.core.routing import Routing, parse_routing

ROUTING_TOML = """
version = 1

[roles.safety_officer]
addresses = ["safety.officer@trial.example"]
urgencies = ["U0", "U1", "U2"]

[roles.dsmb_chair]
addresses = ["dsmb.chair@trial.example"]
urgencies = ["U0"]

[roles.backup]
addresses = []
urgencies = ["U0"]

[sites.S01.investigator]
addresses = ["pi.s01@site1.example", "oncall.s01@site1.example"]
urgencies = ["U0", "U1"]

[sites.S02.investigator]
addresses = ["pi.s02@site2.example"]
urgencies = ["U0", "U1"]
"""

S01_INVESTIGATORS = {"pi.s01@site1.example", "oncall.s01@site1.example"}
S02_INVESTIGATORS = {"pi.s02@site2.example"}
SAFETY_OFFICER = "safety.officer@trial.example"
DSMB_CHAIR = "dsmb.chair@trial.example"
DEADLINE = datetime(2024, 3, 2, 10, 0, tzinfo=UTC)


def make_routing(text: str = ROUTING_TOML) -> Routing:
    """The test routing file (S01 and S02 have investigators; S03 has none)."""
    return parse_routing(text)


def make_payload(**overrides: Any) -> SignalPayload:
    """A U0 SAE payload for investigators and the safety officer."""
    fields: dict[str, Any] = {
        "rule_id": "sae-reported",
        "rule_version": 1,
        "category": "sae",
        "title": "Serious adverse event",
        "urgency": Urgency.U0,
        "recipients": (Role.INVESTIGATOR, Role.SAFETY_OFFICER),
        "arm": "B",
        "reason": "AE reported as serious (hospitalisation) within 7 days after UC-MSC infusion.",
        "evidence_event_ids": (UUID("00000000-0000-4000-8000-000000000001"),),
        "values": {"ctcae_grade": 3, "hospitalised": True, "alt_x_uln": 4.5},
        "reporting_deadline": DEADLINE,
        "deadline_label": None,
    }
    fields.update(overrides)
    return SignalPayload(**fields)


def make_signal(
    *,
    event_id: UUID | None = None,
    site_id: str = "S01",
    participant_id: str = "P-0042",
    **payload: Any,
) -> SignalRaised:
    """A SignalRaised with a fresh id unless one is given."""
    return SignalRaised(
        event_id=event_id or uuid4(),
        trial_id="NCT01724398",
        site_id=site_id,
        participant_id=participant_id,
        occurred_at=datetime(2024, 3, 1, 8, 30, tzinfo=UTC),
        recorded_at=datetime(2024, 3, 1, 9, 0, tzinfo=UTC),
        source="rules",
        source_ref=f"sae-reported:{participant_id}",
        actor="safetymon-rules",
        correlation_id=uuid4(),
        payload=make_payload(**payload),
    )


def make_update(original: SignalRaised, *, status: str = "updated") -> SignalUpdated:
    """An update (or retraction) of `original`."""
    return SignalUpdated(
        **original.model_dump(exclude={"event_type", "event_id"}),
        event_id=uuid4(),
        signal_id=original.event_id,
        status=status,
    )
