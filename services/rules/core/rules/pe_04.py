"""PE-04 transfusion-related lung injury after plasma exchange (core layer, one rule).

Source: RULES.md §4.5 PE-04 [UNCONF: the 6 h TRALI definition]: a new hypoxaemia or
respiratory-distress AE [DC word list: hypoxia/hypoxaemia, respiratory distress or failure,
dyspnoea, lung injury, pulmonary oedema] with onset in [PE start, PE end + 6 h]. The
exchange replaces plasma (registry: 2000 mL), so every session counts as a plasma exposure
[DC]. U0 to investigator and safety officer (Kaplan: anaphylactoid and lung reactions to
FFP are the commonest serious apheresis complications).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from clinical import windows
from clinical.codes import RESPIRATORY_WORDS, term_has_word
from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig, hours
from services.rules.core.rules._ae_window import AEWindowRule, evaluate_ae_window_rule
from services.rules.core.rules._alerting import INV_SO
from services.rules.core.rules._procedures import PE, end_of
from services.rules.core.rules._triggers import AE_FACTS, on
from services.rules.core.state import ParticipantState, Procedure

RULE_ID: Final = "PE-04"
RULE_VERSION: Final = 1


def _session(state: ParticipantState, at: datetime, config: TrialConfig) -> Procedure | None:
    tail = hours(config.procedures.trali_hours)
    return windows.latest(
        p
        for p in state.procedures
        if p.treatment == PE and p.started_at <= at <= end_of(p, config) + tail
    )


_RULE: Final = AEWindowRule(
    RULE_ID,
    RULE_VERSION,
    "plasma_exchange",
    "Possible transfusion-related lung injury after plasma exchange",
    "PE end + 6 h",
    lambda ae: term_has_word(
        ae.term, ae.meddra_llt_code, words=RESPIRATORY_WORDS, llts=frozenset()
    ),
    _session,
    lambda _ae: Urgency.U0,
    INV_SO,
)


#: Acts only on the AE a report or update just set (`touched_ae`). (`evaluate_ae_window_rule`)
TRIGGERS: Final = on(*AE_FACTS)


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise PE-04 for a respiratory AE within 6 h of the end of a plasma exchange."""
    return evaluate_ae_window_rule(_RULE, state, fact, config)
