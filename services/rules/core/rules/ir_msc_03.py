"""IR-MSC-03 thromboembolic event after UC-MSC (core layer, one rule).

Source: RULES.md §4.4 IR-MSC-03 [DC] (the MSC literature reports rare thromboembolic SAEs):
an AE whose term names thrombosis, embolism or a thromboembolic event [DC word list] with
onset <= 7 days after the start of a UC-MSC infusion (closed interval [start, start + 7 d]).
U1 to investigator and safety officer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from clinical.codes import THROMBOEMBOLIC_WORDS, term_has_word
from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig, days
from services.rules.core.rules._ae_window import AEWindowRule, evaluate_ae_window_rule
from services.rules.core.rules._alerting import INV_SO
from services.rules.core.rules._procedures import MSC, latest_started_within
from services.rules.core.rules._triggers import AE_FACTS, on
from services.rules.core.state import ParticipantState, Procedure

RULE_ID: Final = "IR-MSC-03"
RULE_VERSION: Final = 1


def _infusion(state: ParticipantState, at: datetime, config: TrialConfig) -> Procedure | None:
    return latest_started_within(state, at, MSC, days(config.procedures.thromboembolic_days))


_RULE: Final = AEWindowRule(
    RULE_ID,
    RULE_VERSION,
    "infusion_reaction",
    "Thromboembolic event after UC-MSC infusion",
    "7 d after UC-MSC",
    lambda ae: term_has_word(
        ae.term, ae.meddra_llt_code, words=THROMBOEMBOLIC_WORDS, llts=frozenset()
    ),
    _infusion,
    lambda _ae: Urgency.U1,
    INV_SO,
)


#: Acts only on the AE a report or update just set (`touched_ae`). (`evaluate_ae_window_rule`)
TRIGGERS: Final = on(*AE_FACTS)


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise IR-MSC-03 for a thromboembolic AE within 7 days of a UC-MSC infusion."""
    return evaluate_ae_window_rule(_RULE, state, fact, config)
