"""VB-02 major haemoglobin drop without transfusion (core layer, one rule).

Source: RULES.md §3 VB-02 (Baveno V failure criterion): Hb(t2) <= Hb(t1) - 30 g/L (3.0 g/dL)
with t2 - t1 <= 24 h (closed) and no RBC transfusion recorded in (t1, t2]. U0 to
investigator and safety officer. Late results pair with results already on record, in
either order. Episodes: family "VB-02/03" (VB-02 level 2, VB-03 level 1).
"""

from __future__ import annotations

from typing import Final

from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig
from services.rules.core.rules._alerting import INV_SO, Finding, emit, late_values, note_episode
from services.rules.core.rules._bleeding import HB_FAMILY, HbDrop, hb_drops, largest
from services.rules.core.rules._triggers import on
from services.rules.core.state import ParticipantState

RULE_ID: Final = "VB-02"
RULE_VERSION: Final = 1
LEVEL: Final = 2


def major_drops(state: ParticipantState, fact: ClinicalFact, config: TrialConfig) -> list[HbDrop]:
    """Drops of >= 30 g/L within 24 h with no RBC transfusion between the two results."""
    threshold = config.bleeding.hb_major_drop_g_l
    return [d for d in hb_drops(state, fact, config) if d.drop >= threshold and not d.transfusions]


#: Only a new Hb result (`hb_drops`); transfusions are read for the pair, never acted on.
TRIGGERS: Final = on(kinds=("hb",))


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise VB-02 for the largest untransfused major Hb drop this fact completes."""
    drop = largest(major_drops(state, fact, config))
    if drop is None:
        return state, ()
    state, fire = note_episode(
        state, fact, family=HB_FAMILY, at=drop.later.at, level=LEVEL, config=config
    )
    if not fire:
        return state, ()
    finding = Finding(
        RULE_ID,
        RULE_VERSION,
        "bleeding",
        "Major haemoglobin drop",
        Urgency.U0,
        INV_SO,
        f"Hb fell {drop.drop:g} g/L ({drop.earlier.value:g} -> {drop.later.value:g}) in "
        f"{drop.hours:g} h with no RBC transfusion between (Baveno failure criterion)",
        (drop.earlier.event_id, drop.later.event_id),
        {**hb_values(drop), **late_values(fact, config)},
        (drop.earlier.event_id, drop.later.event_id),
    )
    return state, (emit(state, fact, finding),)


def hb_values(drop: HbDrop) -> dict[str, str | float | int | bool | None]:
    """Signal values describing an Hb pair."""
    return {
        "hb_earlier_g_l": drop.earlier.value,
        "hb_later_g_l": drop.later.value,
        "hb_drop_g_l": drop.drop,
        "hours_between": drop.hours,
        "rbc_transfused_between": bool(drop.transfusions),
    }
