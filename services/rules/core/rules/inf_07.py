"""INF-07 procedure-proximate infection (core layer, one rule).

Source: RULES.md §4.1 and §4.3 INF-07 [DC]: an infection AE (SOC Infections and
infestations; matched by term and LLT, see `clinical.ae_terms`) with onset in `W_INF_MSC` = (MSC
start, + 7 d] or `W_INF_PE` = (PE start, + 72 h], tagged with the procedure and the arm for
the DSMB AESI tables. U0 if serious, else U1; investigator and safety officer; re-fires once
if a non-serious AE becomes serious. Catheter-related infection is INF-08's (which carries
the same tag). INF-03/04/05 findings carry the tag on their own signals rather than raising
a second one here.
"""

from __future__ import annotations

from typing import Final

from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig
from services.rules.core.rules._alerting import (
    INV_SO,
    Finding,
    ae_key,
    emit,
    escalates,
    late_values,
    note_episode,
)
from services.rules.core.rules._infection import is_catheter_infection_ae, is_infection_ae
from services.rules.core.rules._procedures import infection_tag
from services.rules.core.rules._shared import ae_values, is_serious, touched_ae
from services.rules.core.rules._triggers import AE_FACTS, on
from services.rules.core.state import ParticipantState

RULE_ID: Final = "INF-07"
RULE_VERSION: Final = 1


#: Acts only on the AE a report or update just set (`touched_ae`).
TRIGGERS: Final = on(*AE_FACTS)


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise INF-07 for an infection AE that began in a UC-MSC or PE infection window."""
    ae = touched_ae(state, fact)
    if ae is None or not is_infection_ae(ae) or is_catheter_infection_ae(ae):
        return state, ()
    tag, procedure = infection_tag(state, ae.onset_at, config)
    if procedure is None:
        return state, ()
    urgency = Urgency.U0 if is_serious(ae) else Urgency.U1
    if not escalates(state, RULE_ID, ae, urgency):
        return state, ()
    state, _ = note_episode(state, fact, family=RULE_ID, at=ae.onset_at, level=1, config=config)
    finding = Finding(
        RULE_ID,
        RULE_VERSION,
        "infection",
        "Infection after a trial procedure",
        urgency,
        INV_SO,
        f"infection AE {ae.ae_ref} '{ae.term}' (CTCAE grade {ae.ctcae_grade}) began "
        f"{tag['hours_after_procedure_start']} h after the start of {procedure.treatment} "
        f"({tag['window']}); DSMB AESI",
        (*ae.event_ids, procedure.event_id),
        {**ae_values(ae), **tag, **late_values(fact, config)},
        (fact.event_id,),
    )
    signal = emit(state, fact, finding)
    return state.with_raised(ae_key(RULE_ID, ae, urgency)), (signal,)
