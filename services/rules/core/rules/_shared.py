"""What the SAE-family rules share (core layer): the AE a fact touched, day 0, AE values.

Seriousness, fatality, relatedness and SUSAR are `clinical.adverse_events`' (one definition
for the rules, the DSMB report and the audit); they are re-exported here for the rules.
"""

from __future__ import annotations

from datetime import datetime

from clinical.adverse_events import (
    SUSPECTED,
    is_fatal,
    is_life_threatening,
    is_serious,
    is_susar_candidate,
    qualifying_criteria,
)
from schemas import (
    AdverseEventReported,
    AdverseEventUpdated,
    ClinicalFact,
    FactCorrected,
)
from services.rules.core.state import AdverseEventState, ParticipantState

__all__ = [
    "SUSPECTED",
    "ae_values",
    "day0",
    "event_type",
    "is_fatal",
    "is_life_threatening",
    "is_serious",
    "is_susar_candidate",
    "qualifying_criteria",
    "touched_ae",
]

_AE_FACTS = (AdverseEventReported, AdverseEventUpdated, FactCorrected)


def touched_ae(state: ParticipantState, fact: ClinicalFact) -> AdverseEventState | None:
    """Return the AE whose values `fact` just set (report, update or correction), if any."""
    if not isinstance(fact, _AE_FACTS):
        return None
    return state.adverse_event_of(fact.event_id)


def day0(ae: AdverseEventState, fact: ClinicalFact) -> datetime:
    """Start of a reporting clock: investigator awareness, else when safetymon learned it."""
    return ae.awareness_at or fact.recorded_at


def ae_values(ae: AdverseEventState) -> dict[str, str | int | bool | None]:
    """Signal values that describe an AE with codes only (term and grade allowed, no narrative)."""
    return {
        "ae_ref": ae.ae_ref,
        "term": ae.term,
        "ctcae_grade": ae.ctcae_grade,
        "seriousness_criteria": ",".join(qualifying_criteria(ae)) or None,
        "relatedness_uc_msc": ae.relatedness_uc_msc,
        "expectedness": ae.expectedness,
        "outcome": ae.outcome,
    }


def event_type(fact: ClinicalFact) -> str:
    """Return the wire discriminator of a fact, for signal values."""
    return str(getattr(fact, "event_type", type(fact).__name__))
