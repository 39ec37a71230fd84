"""LFP-01 MELD ≥ 30 after randomisation (core layer, one rule).

Source: RULES.md §5.3 LFP-01 [DC threshold: the protocol's MELD < 30 inclusion ceiling] and
§5.1 (original MELD, OPTN Policy 9.1.D pre-2016): computed with `calculators.meld` from
bilirubin, INR and creatinine collected within 48 h of each other (SI converted to mg/dL by
the calculators' helpers), dialysis rule applied. U1 to investigator and safety officer.
Episodes (RULES.md §0.2): one signal per episode; a later score joins it while the quiet
period has not passed.
"""

from __future__ import annotations

from typing import Final

from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig
from services.rules.core.rules._alerting import INV_SO, Finding, emit, late_values, note_episode
from services.rules.core.rules._liver import MELD_KINDS, MeldPoint, meld_values, new_meld_points
from services.rules.core.rules._triggers import on
from services.rules.core.state import ParticipantState

RULE_ID: Final = "LFP-01"
RULE_VERSION: Final = 1


#: Only a new MELD input (`new_meld_points`).
TRIGGERS: Final = on(kinds=MELD_KINDS)


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise LFP-01 for a new MELD at or above the ceiling that opens an episode."""
    signals: list[SignalRaised] = []
    for point in new_meld_points(state, fact, config):
        if point.score < config.liver.meld_alert:
            continue
        state, fire = note_episode(state, fact, family=RULE_ID, at=point.at, level=1, config=config)
        if fire:
            signals.append(emit(state, fact, _finding(fact, point, config)))
    return state, tuple(signals)


def _finding(fact: ClinicalFact, point: MeldPoint, config: TrialConfig) -> Finding:
    ids = tuple(o.event_id for o in point.inputs)
    return Finding(
        RULE_ID,
        RULE_VERSION,
        "liver_progression",
        "MELD at or above the inclusion ceiling",
        Urgency.U1,
        INV_SO,
        f"original MELD {point.score} (>= {config.liver.meld_alert:g}) after randomisation "
        f"(bilirubin {point.bilirubin.value:g} umol/L, INR {point.inr.value:g}, "
        f"creatinine {point.creatinine.value:g} umol/L"
        + (", dialysis rule applied)" if point.dialysis else ")"),
        ids,
        {**meld_values(point), **late_values(fact, config)},
        ids,
    )
