"""IR-MSC-01 UC-MSC infusion reaction (core layer, one rule).

Source: RULES.md §4.4 IR-MSC-01 (CTCAE v5 Infusion related reaction / Allergic reaction;
Lalu 2012, Wang 2021, He 2015 for the MSC pattern): an AE Infusion related reaction,
Allergic reaction, Anaphylaxis, Chills, Urticaria or Fever (or their §0.6 LLTs) with onset
in `W_IR_MSC` = [MSC start, MSC end + 24 h]. CTCAE grade 1-2 -> U1; grade >= 3 or
anaphylaxis at any grade -> U0. Investigator and safety officer. (SAE-05, the reminder to
report an SAE, is not part of this service yet.)
"""

from __future__ import annotations

from typing import Final

from clinical.codes import (
    ANAPHYLAXIS,
    IR_MSC_LLT,
    IR_MSC_TERMS,
    normalise_term,
    term_in,
)
from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig
from services.rules.core.rules._ae_window import AEWindowRule, evaluate_ae_window_rule
from services.rules.core.rules._alerting import INV_SO
from services.rules.core.rules._procedures import MSC, latest_reaction
from services.rules.core.rules._triggers import AE_FACTS, on
from services.rules.core.state import AdverseEventState, ParticipantState

RULE_ID: Final = "IR-MSC-01"
RULE_VERSION: Final = 1
_SEVERE_GRADE: Final = 3
_ANAPHYLAXIS_LLT: Final = "10002218"


def reaction_urgency(ae: AdverseEventState) -> Urgency:
    """U0 for CTCAE grade >= 3 or anaphylaxis (any grade), otherwise U1."""
    anaphylaxis = normalise_term(ae.term) == ANAPHYLAXIS or ae.meddra_llt_code == _ANAPHYLAXIS_LLT
    return Urgency.U0 if ae.ctcae_grade >= _SEVERE_GRADE or anaphylaxis else Urgency.U1


_RULE: Final = AEWindowRule(
    RULE_ID,
    RULE_VERSION,
    "infusion_reaction",
    "Reaction after UC-MSC infusion",
    "W_IR_MSC",
    lambda ae: term_in(ae.term, ae.meddra_llt_code, terms=IR_MSC_TERMS, llts=IR_MSC_LLT),
    lambda state, at, config: latest_reaction(state, at, MSC, config),
    reaction_urgency,
    INV_SO,
)


#: Acts only on the AE a report or update just set (`touched_ae`). (`evaluate_ae_window_rule`)
TRIGGERS: Final = on(*AE_FACTS)


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise IR-MSC-01 for an infusion-reaction AE that began in W_IR_MSC."""
    return evaluate_ae_window_rule(_RULE, state, fact, config)
