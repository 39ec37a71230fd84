"""Builders of submissions for tests: one place that knows what a valid event looks like."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

TRIAL = "NCT01724398"

#: Routing file used by the pipeline tests: two sites, safety officer and DSMB chair.
ROUTING = """
version = 1
[roles.safety_officer]
addresses = ["so@trial.example"]
urgencies = ["U0", "U1", "U2"]
[roles.dsmb_chair]
addresses = ["chair@dsmb.example"]
urgencies = ["U0"]
[sites.S01.investigator]
addresses = ["pi@s01.example", "oncall@s01.example"]
urgencies = ["U0", "U1"]
[sites.S02.investigator]
addresses = ["pi@s02.example"]
urgencies = ["U0", "U1"]
"""
EXPECTED_PER_SITE = {
    "S01": {"so@trial.example", "pi@s01.example", "oncall@s01.example"},
    "S02": {"so@trial.example", "pi@s02.example"},
}


def unique(prefix: str) -> str:
    """A code no other test uses (parallel and real-broker runs never collide)."""
    return f"{prefix}-{uuid4().hex[:10]}"


def submission(event_type: str, payload: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    """A submitted event with sensible envelope defaults."""
    return {
        "event_type": event_type,
        "trial_id": TRIAL,
        "site_id": "S01",
        "participant_id": "P-001",
        "occurred_at": "2024-03-01T08:00:00+08:00",
        "source": "edc",
        "source_ref": unique("ref"),
        "payload": payload,
        **envelope,
    }


def lab(
    loinc: str = "1975-2", value: float = 5.0, unit: str = "mg/dL", **envelope: Any
) -> dict[str, Any]:
    """A lab result submission."""
    payload = {"loinc": loinc, "result": {"value": value, "unit": unit}}
    return submission("lab_result_recorded", payload, source="lab", **envelope)


def enrolment(arm: str = "B", **envelope: Any) -> dict[str, Any]:
    """A randomisation."""
    return submission("participant_enrolled", {"arm": arm, "baseline_meld": 22}, **envelope)


def sae(ae_ref: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A serious adverse event (hospitalisation), aware at 2024-03-01T10:00Z."""
    payload = {
        "ae_ref": ae_ref or unique("AE"),
        "term": "Oesophageal varices haemorrhage",
        "ctcae_grade": 3,
        "seriousness_criteria": ["hospitalisation"],
        "relatedness_uc_msc": "unlikely",
        "relatedness_plasma_exchange": "not_related",
        "expectedness": "expected",
        "outcome": "recovering",
        "awareness_at": "2024-03-01T10:00:00Z",
        **overrides.pop("payload", {}),
    }
    return submission("adverse_event_reported", payload, **overrides)
