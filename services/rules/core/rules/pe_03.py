"""PE-03 plasma allergy (core layer, one rule).

Source: RULES.md §4.5 PE-03 (CTCAE v5; Kaplan, "Complications of apheresis": anaphylactoid
reactions to FFP are the commonest serious TPE complication): an AE Urticaria, Allergic
reaction or Anaphylaxis (or their §0.6 LLTs) with onset in `W_IR_PE` = [PE start, PE end +
6 h]. Grade 1-2 -> U1; grade >= 3 or anaphylaxis -> U0. RULES.md names no recipients:
investigator and safety officer [DC]. In arm D an MSC infusion can follow PE closely; an AE
in both windows fires this rule and IR-MSC-01, and the investigator attributes it.
"""

from __future__ import annotations

from typing import Final

from clinical.codes import PLASMA_ALLERGY_LLT, PLASMA_ALLERGY_TERMS, term_in
from schemas import ClinicalFact, SignalRaised
from services.rules.core.config import TrialConfig
from services.rules.core.rules._ae_window import AEWindowRule, evaluate_ae_window_rule
from services.rules.core.rules._alerting import INV_SO
from services.rules.core.rules._procedures import PE, latest_reaction
from services.rules.core.rules._triggers import AE_FACTS, on
from services.rules.core.rules.ir_msc_01 import reaction_urgency
from services.rules.core.state import ParticipantState

RULE_ID: Final = "PE-03"
RULE_VERSION: Final = 1
_RULE: Final = AEWindowRule(
    RULE_ID,
    RULE_VERSION,
    "plasma_exchange",
    "Allergic reaction after plasma exchange",
    "W_IR_PE",
    lambda ae: term_in(
        ae.term, ae.meddra_llt_code, terms=PLASMA_ALLERGY_TERMS, llts=PLASMA_ALLERGY_LLT
    ),
    lambda state, at, config: latest_reaction(state, at, PE, config),
    reaction_urgency,
    INV_SO,
)


#: Acts only on the AE a report or update just set (`touched_ae`). (`evaluate_ae_window_rule`)
TRIGGERS: Final = on(*AE_FACTS)


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise PE-03 for an allergic AE that began in W_IR_PE."""
    return evaluate_ae_window_rule(_RULE, state, fact, config)
