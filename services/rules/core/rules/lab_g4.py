"""LAB-G4 CTCAE grade 4 laboratory abnormality (core layer, one rule).

Source: RULES.md §7 (NCI CTCAE v5.0 lab terms, graded by `calculators.ctcae.grade`): any
grade 4 result after randomisation → U0 to investigator and safety officer. Once per
(term, grade) episode (RULES.md §0.2).
"""

from __future__ import annotations

from typing import Final

from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig
from services.rules.core.rules._alerting import INV_SO
from services.rules.core.rules._lab_grades import KINDS, GradeRule, evaluate_grade_rule
from services.rules.core.rules._triggers import on
from services.rules.core.state import ParticipantState

RULE_ID: Final = "LAB-G4"
RULE_VERSION: Final = 1
_RULE: Final = GradeRule(
    RULE_ID, RULE_VERSION, 4, Urgency.U0, INV_SO, "CTCAE grade 4 laboratory abnormality"
)


#: Only a new result of a graded kind (`evaluate_grade_rule`).
TRIGGERS: Final = on(kinds=KINDS)


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise LAB-G4 for a grade 4 result."""
    return evaluate_grade_rule(_RULE, state, fact, config)
