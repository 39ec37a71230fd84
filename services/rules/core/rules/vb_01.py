"""VB-01 bleeding adverse event (core layer, one rule).

Source: RULES.md §3 VB-01 (Baveno; DC): any AE whose term is on the variceal / portal-
hypertensive bleeding list (oesophageal or gastric varices haemorrhage, haematemesis,
melaena, upper GI / GI haemorrhage, haemorrhagic portal hypertensive gastropathy) or carries
a CTCAE bleeding LLT of §0.6, any grade. Presumed serious: U0 to investigator and safety
officer, saying so when the AE is not (yet) reported serious. Fires once per AE, at U0 even
when the same report makes the AE serious and SAE-01 pages the same people: notify sends
each person one page per event and delivers this finding on that page's thread.
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
    late_values,
    note_episode,
)
from services.rules.core.rules._bleeding import is_bleeding_ae
from services.rules.core.rules._shared import ae_values, is_serious, touched_ae
from services.rules.core.rules._triggers import AE_FACTS, on
from services.rules.core.state import ParticipantState

RULE_ID: Final = "VB-01"
RULE_VERSION: Final = 1


#: Acts only on the AE a report or update just set (`touched_ae`).
TRIGGERS: Final = on(*AE_FACTS)


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise VB-01 the first time an AE of this participant is coded as a bleed."""
    ae = touched_ae(state, fact)
    if ae is None or not is_bleeding_ae(ae) or ae_key(RULE_ID, ae) in state.raised:
        return state, ()
    state, _ = note_episode(state, fact, family=RULE_ID, at=ae.onset_at, level=1, config=config)
    serious = is_serious(ae)
    presumption = (
        "reported serious"
        if serious
        else "not reported serious: presume serious (hospitalisation / life-threatening) and "
        "report as an SAE unless the investigator judges otherwise"
    )
    finding = Finding(
        RULE_ID,
        RULE_VERSION,
        "bleeding",
        "Variceal / GI bleeding AE",
        Urgency.U0,
        INV_SO,
        f"AE {ae.ae_ref} '{ae.term}' (CTCAE grade {ae.ctcae_grade}) is a bleeding event; "
        f"{presumption}",
        ae.event_ids,
        {**ae_values(ae), "presumed_serious": not serious, **late_values(fact, config)},
        (fact.event_id,),
    )
    signal = emit(state, fact, finding)
    return state.with_raised(ae_key(RULE_ID, ae)), (signal,)
