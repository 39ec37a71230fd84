"""SAE-04 SUSAR candidate (core layer, one rule).

Source: ICH E2A (suspected unexpected serious adverse reaction: serious, a reasonable
possibility of a causal relation to the investigational product, and not consistent with the
reference safety information). Expedited reporting clocks from day 0 (first knowledge):
fatal or life-threatening, 7 calendar days for the initial report and a complete report
within 8 more days (day 15); any other SUSAR, 15 days. The IMP is UC-MSC; plasma exchange is
a procedure and follows the protocol instead (RULES.md §1 SAE-04 [DC]). Causality 'possible',
'probable' or 'definite' counts as suspected [DC]. Fires once per case (`_cases`); the
report clocks are SUSAR-01's (`susar_01`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Final

from schemas import ClinicalFact, Role, SignalPayload, SignalRaised, Urgency
from services.rules.core.rules._cases import any_raised, case_key, case_records
from services.rules.core.rules._shared import (
    ae_values,
    day0,
    event_type,
    is_fatal,
    is_life_threatening,
    is_susar_candidate,
    touched_ae,
)
from services.rules.core.rules._triggers import AE_FACTS, on
from services.rules.core.signals import build_signal
from services.rules.core.state import ParticipantState

RULE_ID: Final = "SAE-04"
RULE_VERSION: Final = 1
EXPEDITED: Final = timedelta(days=7)
STANDARD: Final = timedelta(days=15)
DSMB_CHAIR_WITHIN: Final = timedelta(hours=24)
EXPEDITED_LABEL: Final = "SUSAR 7-day report"
STANDARD_LABEL: Final = "SUSAR 15-day report"


#: Acts only on the AE a report or update just set (`touched_ae`).
TRIGGERS: Final = on(*AE_FACTS)


def evaluate(
    state: ParticipantState, fact: ClinicalFact
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise SAE-04 the first time an AE of this participant meets the SUSAR criteria."""
    ae = touched_ae(state, fact)
    if ae is None or not is_susar_candidate(ae):
        return state, ()
    case = case_key(ae)  # once per case: a follow-up record is not a new SUSAR (ICH E2D)
    if any_raised(state, RULE_ID, case, case_records(state, ae)):
        return state, ()
    start = day0(ae, fact)
    expedited = is_fatal(ae) or is_life_threatening(ae)
    clock = "7-day (fatal or life-threatening)" if expedited else "15-day"
    payload = SignalPayload(
        rule_id=RULE_ID,
        rule_version=RULE_VERSION,
        category="susar",
        title="SUSAR candidate",
        urgency=Urgency.U0,
        recipients=(Role.SAFETY_OFFICER, Role.INVESTIGATOR, Role.DSMB_CHAIR),
        arm=state.arm,
        reason=(
            f"AE {ae.ae_ref} '{ae.term}' (CTCAE grade {ae.ctcae_grade}) is serious, "
            f"causality to UC-MSC {ae.relatedness_uc_msc}, unexpected: "
            f"{clock} expedited report clock (ICH E2A)"
        ),
        evidence_event_ids=ae.event_ids,
        values={
            **ae_values(ae),
            "day0": start.isoformat(),
            "expedited": expedited,
            "due_followup": (start + STANDARD).isoformat() if expedited else None,
            # RULES.md §8.2 STOP-04: each SUSAR reaches the DSMB chair within 24 h; this
            # U0 signal names the chair, so it is that notice (no second page).
            "dsmb_chair_notice": "STOP-04",
            "dsmb_chair_due": (start + DSMB_CHAIR_WITHIN).isoformat(),
            "trigger_event_type": event_type(fact),
        },
        reporting_deadline=start + (EXPEDITED if expedited else STANDARD),
        deadline_label=EXPEDITED_LABEL if expedited else STANDARD_LABEL,
    )
    keys = {f"{RULE_ID}|ae:{ae.ae_ref}", f"{RULE_ID}|{case}"}
    return replace(state, raised=state.raised | keys), (build_signal(fact, payload),)
