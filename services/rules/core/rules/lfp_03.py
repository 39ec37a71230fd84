"""LFP-03 new organ failure by CLIF-C OF criteria (core layer, one rule).

Source: RULES.md §5.3 LFP-03 (EASL-CLIF CLIF-C OF): liver bilirubin ≥ 205.2 µmol/L (12
mg/dL); kidney creatinine ≥ 176.8 µmol/L (2.0 mg/dL) or renal replacement; brain West Haven
3–4; coagulation INR ≥ 2.5; circulation vasopressor. An organ failing at baseline (last
result before randomisation) is not new. One new organ failure → U1; ≥ 2 concurrent organ
failures (ACLF grade ≥ 2) → U0; investigator and safety officer.

Design choices [DC]: a result, West Haven grade, RRT or vasopressor counts as current for
48 h; respiration (PaO2/FiO2, SpO2/FiO2) is not assessed — no FiO2 arrives on the log. A
brain failure alone is left to HE-01/HE-02, which already page U0 for West Haven ≥ 3 (one
page per finding); it still counts towards ≥ 2 concurrent failures.
Episodes: family LFP-03, level = number of concurrent failures, so it re-fires only when
more organs fail (RULES.md §0.2).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig
from services.rules.core.rules._alerting import INV_SO, Finding, emit, late_values, note_episode
from services.rules.core.rules._liver import (
    ORGAN_KINDS,
    Evidence,
    baseline_failures,
    organ_failures,
    organ_times,
)
from services.rules.core.rules._triggers import TREATMENT, on
from services.rules.core.state import ParticipantState

RULE_ID: Final = "LFP-03"
RULE_VERSION: Final = 1
_ACLF_2: Final = 2


#: Organ support (a treatment fact) or a new organ-failure input (`organ_times`).
TRIGGERS: Final = on(*TREATMENT, kinds=ORGAN_KINDS)


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise LFP-03 when a new organ failure appears, again when more organs fail."""
    enrolled = state.enrolled_at
    if enrolled is None:
        return state, ()
    signals: list[SignalRaised] = []
    for at in organ_times(state, fact):
        failing = organ_failures(state, at, config)
        known = baseline_failures(state, config) if failing else frozenset()
        new = [organ for organ in failing if organ not in known]
        if at < enrolled or not new or list(failing) == ["brain"]:
            continue
        state, fire = note_episode(
            state, fact, family=RULE_ID, at=at, level=len(failing), config=config
        )
        if fire:
            signals.append(emit(state, fact, _finding(fact, at, failing, new, config)))
    return state, tuple(signals)


def _finding(
    fact: ClinicalFact,
    at: datetime,
    failing: dict[str, Evidence],
    new: list[str],
    config: TrialConfig,
) -> Finding:
    urgency = Urgency.U0 if len(failing) >= _ACLF_2 else Urgency.U1
    ids = tuple(e.event_id for e in failing.values())
    return Finding(
        RULE_ID,
        RULE_VERSION,
        "liver_progression",
        "New organ failure (CLIF-C OF)",
        urgency,
        INV_SO,
        f"new organ failure: {', '.join(new)}; {len(failing)} concurrent "
        f"({', '.join(failing)}) at {at.isoformat()}",
        ids,
        {
            "organ_failures": ",".join(failing),
            "new_organ_failures": ",".join(new),
            "organ_failure_count": len(failing),
            **late_values(fact, config),
        },
        ids,
    )
