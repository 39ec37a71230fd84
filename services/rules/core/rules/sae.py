"""SAE-01 serious adverse event recorded (core layer, one rule).

Source: ICH E2A (definition of serious: death, life-threatening, inpatient hospitalisation or
prolongation, persistent or significant disability, congenital anomaly, important medical
event) and ICH E6(R2) 4.11.1 (the investigator reports every SAE to the sponsor immediately;
operationalised as 24 h from awareness, RULES.md §1 [DC]). Protocol-planned admissions for
UC-MSC infusion or plasma exchange are not SAEs by themselves [DC].

Fires once per AE (`ae_ref`): on the report, or on the update that first makes it serious.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from schemas import ClinicalFact, Role, SignalPayload, SignalRaised, Urgency
from services.rules.core.rules._shared import (
    ae_values,
    day0,
    event_type,
    is_serious,
    qualifying_criteria,
    touched_ae,
)
from services.rules.core.rules._triggers import AE_FACTS, on
from services.rules.core.signals import build_signal
from services.rules.core.state import ParticipantState

RULE_ID: Final = "SAE-01"
RULE_VERSION: Final = 1
SPONSOR_REPORT_WITHIN: Final = timedelta(hours=24)
DEADLINE_LABEL: Final = "sponsor report (24 h, ICH E6(R2) 4.11.1)"


#: Acts only on the AE a report or update just set (`touched_ae`).
TRIGGERS: Final = on(*AE_FACTS)


def evaluate(
    state: ParticipantState, fact: ClinicalFact
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise SAE-01 the first time an AE of this participant qualifies as serious."""
    ae = touched_ae(state, fact)
    if ae is None or not is_serious(ae):
        return state, ()
    key = f"{RULE_ID}|ae:{ae.ae_ref}"
    if key in state.raised:
        return state, ()
    criteria = ", ".join(qualifying_criteria(ae))
    payload = SignalPayload(
        rule_id=RULE_ID,
        rule_version=RULE_VERSION,
        category="sae",
        title="Serious adverse event",
        urgency=Urgency.U0,
        recipients=(Role.INVESTIGATOR, Role.SAFETY_OFFICER),
        arm=state.arm,
        reason=(
            f"AE {ae.ae_ref} '{ae.term}' (CTCAE grade {ae.ctcae_grade}) meets ICH E2A "
            f"seriousness criteria: {criteria}; report to the sponsor within 24 h of awareness"
        ),
        evidence_event_ids=ae.event_ids,
        values={**ae_values(ae), "trigger_event_type": event_type(fact)},
        reporting_deadline=day0(ae, fact) + SPONSOR_REPORT_WITHIN,
        deadline_label=DEADLINE_LABEL,
    )
    return state.with_raised(key), (build_signal(fact, payload),)
