"""VB-04 haemoglobin below the transfusion threshold (core layer, one rule).

Source: RULES.md §3 VB-04 (restrictive transfusion threshold, Villanueva 2013 / Baveno):
Hb < 70 g/L (7.0 g/dL). U1 to the investigator. Episodes: family "VB-04" (a persistently low
Hb signals once, again after a 72 h quiet period).
"""

from __future__ import annotations

from typing import Final

from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig
from services.rules.core.rules._alerting import INV, Finding, emit, fresh, late_values, note_episode
from services.rules.core.rules._triggers import on
from services.rules.core.state import ParticipantState

RULE_ID: Final = "VB-04"
RULE_VERSION: Final = 1


#: Only a new Hb result (`fresh`).
TRIGGERS: Final = on(kinds=("hb",))


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise VB-04 for an Hb result below 70 g/L (once per episode)."""
    threshold = config.bleeding.hb_low_g_l
    signals: list[SignalRaised] = []
    for hb in fresh(state, fact, "hb"):
        if hb.value >= threshold:
            continue
        state, fire = note_episode(state, fact, family=RULE_ID, at=hb.at, level=1, config=config)
        if fire:
            finding = Finding(
                RULE_ID,
                RULE_VERSION,
                "bleeding",
                "Haemoglobin below transfusion threshold",
                Urgency.U1,
                INV,
                f"Hb {hb.value:g} g/L is below {threshold:g} g/L "
                "(restrictive transfusion threshold)",
                (hb.event_id,),
                {"hb_g_l": hb.value, "threshold_g_l": threshold, **late_values(fact, config)},
                (hb.event_id,),
            )
            signals.append(emit(state, fact, finding))
    return state, tuple(signals)
