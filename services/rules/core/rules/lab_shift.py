"""LAB-SHIFT worst post-baseline CTCAE grade, for the DSMB shift table (core layer, one rule).

Source: RULES.md §7 "LAB-SHIFT worst post-baseline grade feeds the DSMB shift table (U3)
[DC]" and §8.1 item 7 (lab shift tables baseline x worst post-baseline CTCAE grade). A
post-randomisation result of a §7 term whose grade is above the baseline grade and above
every grade of that term seen since randomisation → U3 (DSMB chair, through the periodic
report, never paged). The worst grade does not depend on the order results arrive in: a
late result of a lower grade is silent, of a higher grade it fires.
"""

from __future__ import annotations

from typing import Final

from schemas import ClinicalFact, Role, SignalRaised, Urgency
from services.rules.core.config import TrialConfig
from services.rules.core.rules._alerting import Finding, emit, fresh, late_values
from services.rules.core.rules._lab_grades import KINDS, graded, range_values
from services.rules.core.rules._triggers import on
from services.rules.core.state import ParticipantState

RULE_ID: Final = "LAB-SHIFT"
RULE_VERSION: Final = 1
_MAX_GRADE: Final = 5


def _key(kind: str, grade: int) -> str:
    return f"{RULE_ID}|{kind}|{grade}"


#: Only a new result of a graded kind (`fresh`).
TRIGGERS: Final = on(kinds=KINDS)


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise LAB-SHIFT when a term reaches a new worst post-baseline grade above baseline."""
    signals: list[SignalRaised] = []
    for result in fresh(state, fact, *KINDS):
        found = graded(state, result)
        if found is None or found.grade <= (found.baseline_grade or 0):
            continue
        worse_known = range(found.grade, _MAX_GRADE + 1)
        if any(_key(result.kind, g) in state.raised for g in worse_known):
            continue
        state = state.with_raised(_key(result.kind, found.grade))
        ids = (result.event_id,)
        finding = Finding(
            RULE_ID,
            RULE_VERSION,
            "laboratory",
            "Worst post-baseline CTCAE grade (DSMB shift table)",
            Urgency.U3,
            (Role.DSMB_CHAIR,),
            f"{found.term}: worst post-baseline CTCAE v5.0 grade is now {found.grade} "
            f"(baseline grade {found.baseline_grade})",
            ids,
            {
                "term": found.term,
                "kind": result.kind,
                "baseline_grade": found.baseline_grade,
                "worst_grade": found.grade,
                "value": result.value,
                **range_values(result),
                **late_values(fact, config),
            },
            ids,
        )
        signals.append(emit(state, fact, finding))
    return state, tuple(signals)
