"""LFP-04 liver transplant performed (core layer, one rule).

Source: RULES.md §5.3 LFP-04 [DC]: a transplant (TreatmentAdministered `liver_transplant`)
→ U1 to investigator and safety officer (the DSMB sees it in the U3 listings). Listing for
transplant is not on the log, so only the operation is detected. Once per procedure fact.
"""

from __future__ import annotations

from typing import Final

from schemas import ClinicalFact, SignalRaised, Treatment, TreatmentAdministered, Urgency
from services.rules.core.config import TrialConfig
from services.rules.core.rules._alerting import INV_SO, Finding, emit, late_values
from services.rules.core.rules._triggers import TREATMENT, on
from services.rules.core.state import ParticipantState

RULE_ID: Final = "LFP-04"
RULE_VERSION: Final = 1


#: Only a treatment fact (a transplant).
TRIGGERS: Final = on(*TREATMENT)


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise LFP-04 for a recorded liver transplant."""
    if not (
        isinstance(fact, TreatmentAdministered)
        and fact.payload.treatment is Treatment.LIVER_TRANSPLANT
    ):
        return state, ()
    key = f"{RULE_ID}|proc:{fact.event_id}"
    if key in state.raised:
        return state, ()
    finding = Finding(
        RULE_ID,
        RULE_VERSION,
        "liver_progression",
        "Liver transplant",
        Urgency.U1,
        INV_SO,
        f"liver transplant performed at {fact.occurred_at.isoformat()}",
        (fact.event_id,),
        {"treatment": Treatment.LIVER_TRANSPLANT.value, **late_values(fact, config)},
        (fact.event_id,),
    )
    return state.with_raised(key), (emit(state, fact, finding),)
