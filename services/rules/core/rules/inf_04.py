"""INF-04 spontaneous bacterial peritonitis (core layer, one rule).

Source: RULES.md §4.2-4.3 INF-04 (EASL 2018 decompensated cirrhosis CPG): ascitic
polymorphonuclear count >= 250 cells/mm³ (0.25 x10^9/L) without a surgical source. RULES.md
§0.5 found no LOINC for the ascitic PMN count: it arrives as neutrophils (751-8) on an
ascitic-fluid specimen [DC]. A surgical source cannot be excluded from the data: the
investigator judges. U0 to investigator and safety officer; INF-07 procedure tag.
"""

from __future__ import annotations

from typing import Final

from schemas import ClinicalFact, SignalRaised
from services.rules.core.config import TrialConfig
from services.rules.core.rules._lab_finding import LabRule, evaluate_lab_rule
from services.rules.core.rules._triggers import on
from services.rules.core.state import ParticipantState

RULE_ID: Final = "INF-04"
RULE_VERSION: Final = 1
_RULE: Final = LabRule(
    RULE_ID,
    RULE_VERSION,
    "ascitic_pmn",
    "Possible spontaneous bacterial peritonitis",
    lambda o, config: o.value >= config.infection.sbp_ascitic_pmn_e9_l,
    lambda o: f"ascitic PMN {o.value * 1000:g} cells/mm³ (>= 250: SBP unless a surgical source)",
    "ascitic_pmn_e9_l",
)


#: Only a new ascitic PMN count (`evaluate_lab_rule`).
TRIGGERS: Final = on(kinds=(_RULE.kind,))


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise INF-04 for an ascitic PMN count >= 0.25 x10^9/L."""
    return evaluate_lab_rule(_RULE, state, fact, config)
