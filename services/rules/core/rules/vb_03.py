"""VB-03 haemoglobin drop, possible bleed (core layer, one rule).

Source: RULES.md §3 VB-03 (ISTH 2022 major-bleeding threshold; DC use): Hb fall >= 20 g/L
(2.0 g/dL) within 24 h, whatever the transfusion status, when VB-02 is not met by the same
results. U1 to the investigator. Episodes shared with VB-02 (family "VB-02/03", level 1).
"""

from __future__ import annotations

from typing import Final

from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig
from services.rules.core.rules._alerting import INV, Finding, emit, late_values, note_episode
from services.rules.core.rules._bleeding import HB_FAMILY, hb_drops, largest
from services.rules.core.rules._triggers import on
from services.rules.core.rules.vb_02 import hb_values, major_drops
from services.rules.core.state import ParticipantState

RULE_ID: Final = "VB-03"
RULE_VERSION: Final = 1
LEVEL: Final = 1


#: Only a new Hb result (`hb_drops`); transfusions are read for the pair, never acted on.
TRIGGERS: Final = on(kinds=("hb",))


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise VB-03 for the largest Hb drop >= 20 g/L this fact completes, VB-02 not met."""
    if major_drops(state, fact, config):
        return state, ()
    threshold = config.bleeding.hb_minor_drop_g_l
    drop = largest([d for d in hb_drops(state, fact, config) if d.drop >= threshold])
    if drop is None:
        return state, ()
    state, fire = note_episode(
        state, fact, family=HB_FAMILY, at=drop.later.at, level=LEVEL, config=config
    )
    if not fire:
        return state, ()
    transfused = " (RBC transfused between)" if drop.transfusions else ""
    finding = Finding(
        RULE_ID,
        RULE_VERSION,
        "bleeding",
        "Haemoglobin drop: possible bleed",
        Urgency.U1,
        INV,
        f"Hb fell {drop.drop:g} g/L ({drop.earlier.value:g} -> {drop.later.value:g}) in "
        f"{drop.hours:g} h{transfused}",
        (drop.earlier.event_id, drop.later.event_id, *(p.event_id for p in drop.transfusions)),
        {**hb_values(drop), **late_values(fact, config)},
        (drop.earlier.event_id, drop.later.event_id),
    )
    return state, (emit(state, fact, finding),)
