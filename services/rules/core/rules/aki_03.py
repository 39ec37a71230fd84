"""AKI-03 KDIGO stage 2–3 or renal replacement started, on escalation (core layer).

Source: RULES.md §6 (KDIGO 2012; ICA-AKI 2015) via `calculators.aki.stage_aki`; stage 1 →
U1 to investigator; stage 2 → U1 with the HRS-AKI work-up note; stage 3 (≥ 3 × baseline,
≥ 353.6 µmol/L with an acute rise, or RRT started) → U0 to investigator and safety officer.
The AKI rules share one episode (see `_aki`): re-fire only when the stage escalates.
"""

from __future__ import annotations

from typing import Final

from schemas import ClinicalFact, SignalRaised
from services.rules.core.config import TrialConfig
from services.rules.core.rules._aki import evaluate_aki
from services.rules.core.rules._triggers import TREATMENT, on
from services.rules.core.state import ParticipantState

RULE_ID: Final = "AKI-03"
RULE_VERSION: Final = 1


#: Renal replacement (a treatment fact) or a new creatinine (`_aki._times`).
TRIGGERS: Final = on(*TREATMENT, kinds=("creatinine",))


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise AKI-03 (stage 2 or 3) for this fact's creatinine or RRT."""
    return evaluate_aki((RULE_ID, RULE_VERSION), state, fact, config)
