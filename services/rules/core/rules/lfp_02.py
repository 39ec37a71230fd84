"""LFP-02 MELD rise of ≥ 5 points (core layer, one rule).

Source: RULES.md §5.3 LFP-02 [DC]: original MELD − baseline MELD (the enrolment payload's
`baseline_meld`) ≥ 5, or MELD − the lowest MELD computable in the prior 14 days ≥ 5. U1 to
investigator and safety officer. One signal per episode (RULES.md §0.2).
"""

from __future__ import annotations

from typing import Final

from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig
from services.rules.core.rules._alerting import (
    INV_SO,
    Finding,
    Value,
    emit,
    late_values,
    note_episode,
)
from services.rules.core.rules._liver import (
    MELD_KINDS,
    MeldPoint,
    lowest_before,
    meld_values,
    new_meld_points,
)
from services.rules.core.rules._triggers import on
from services.rules.core.state import ParticipantState

RULE_ID: Final = "LFP-02"
RULE_VERSION: Final = 1


#: Only a new MELD input (`new_meld_points`).
TRIGGERS: Final = on(kinds=MELD_KINDS)


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise LFP-02 when a new MELD is ≥ 5 above baseline or above the 14-day lowest."""
    signals: list[SignalRaised] = []
    for point in new_meld_points(state, fact, config):
        rise = _rise(state, point, config)
        if rise is None:
            continue
        state, fire = note_episode(state, fact, family=RULE_ID, at=point.at, level=1, config=config)
        if fire:
            signals.append(emit(state, fact, _finding(fact, point, rise, config)))
    return state, tuple(signals)


def _rise(
    state: ParticipantState, point: MeldPoint, config: TrialConfig
) -> tuple[dict[str, Value], MeldPoint | None] | None:
    """What the rise is measured against, when it is large enough; else None."""
    needed = config.liver.meld_rise
    baseline = state.baseline_meld
    lowest = lowest_before(state, point, config)
    by_baseline = baseline is not None and point.score - baseline >= needed
    by_lowest = lowest is not None and point.score - lowest.score >= needed
    if not (by_baseline or by_lowest):
        return None
    values: dict[str, Value] = {
        "baseline_meld": baseline,
        "lowest_meld_14d": None if lowest is None else lowest.score,
        "rise_from_baseline": None if baseline is None else point.score - baseline,
        "rise_from_lowest": None if lowest is None else point.score - lowest.score,
        "criteria": ",".join(
            name for name, met in (("baseline", by_baseline), ("lowest_14d", by_lowest)) if met
        ),
    }
    return values, (lowest if by_lowest else None)


def _finding(
    fact: ClinicalFact,
    point: MeldPoint,
    rise: tuple[dict[str, Value], MeldPoint | None],
    config: TrialConfig,
) -> Finding:
    values, lowest = rise
    ids = tuple(o.event_id for o in point.inputs)
    earlier = () if lowest is None else tuple(o.event_id for o in lowest.inputs)
    return Finding(
        RULE_ID,
        RULE_VERSION,
        "liver_progression",
        "MELD rise",
        Urgency.U1,
        INV_SO,
        f"original MELD {point.score}: baseline {values['baseline_meld']}, lowest in the prior "
        f"{config.liver.meld_lowest_lookback_days:g} d {values['lowest_meld_14d']} "
        f"(rise >= {config.liver.meld_rise:g} by {values['criteria']})",
        (*ids, *earlier),
        {**meld_values(point), **values, **late_values(fact, config)},
        ids,
    )
