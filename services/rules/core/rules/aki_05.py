"""AKI-05 low urine output (core layer, one rule).

Source: RULES.md §6 AKI-05 (KDIGO 2012: urine output < 0.5 mL/kg/h for 6 h is AKI stage 1):
when hourly urine output is ingested (vital sign `urine_output`, mL/kg/h), every measurement
of a run below 0.5 mL/kg/h spanning >= 6 h, with no gap between measurements longer than
1.5 h [DC: "consecutive" hourly values], → U1 to the investigator. Once per episode (family
"AKI-05", RULES.md §0.2); the run is measured from its first low value to the newest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig, hours
from services.rules.core.rules._alerting import (
    INV,
    Finding,
    emit,
    fresh,
    late_values,
    note_episode,
)
from services.rules.core.rules._triggers import on
from services.rules.core.state import Observation, ParticipantState

RULE_ID: Final = "AKI-05"
RULE_VERSION: Final = 1


def low_run(state: ParticipantState, at: datetime, config: TrialConfig) -> tuple[Observation, ...]:
    """The unbroken run of low urine outputs ending at `at` (oldest first; empty if not low)."""
    cfg = config.aki
    series = [o for o in state.series("uo") if o.at <= at]
    run: list[Observation] = []
    for o in reversed(series):
        if o.value >= cfg.uo_ml_kg_h or (run and run[-1].at - o.at > hours(cfg.uo_max_gap_hours)):
            break
        run.append(o)
    return tuple(reversed(run))


#: Only a new urine output (`fresh`).
TRIGGERS: Final = on(kinds=("uo",))


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise AKI-05 when urine output has stayed < 0.5 mL/kg/h for 6 consecutive hours."""
    signals: list[SignalRaised] = []
    for point in fresh(state, fact, "uo"):
        run = low_run(state, point.at, config)
        if not run or run[-1].at - run[0].at < hours(config.aki.uo_hours):
            continue
        state, fire = note_episode(state, fact, family=RULE_ID, at=point.at, level=1, config=config)
        if not fire:
            continue
        span = round((run[-1].at - run[0].at).total_seconds() / 3600, 2)
        ids = tuple(o.event_id for o in run)
        finding = Finding(
            RULE_ID,
            RULE_VERSION,
            "aki",
            "Low urine output (KDIGO)",
            Urgency.U1,
            INV,
            f"urine output below {config.aki.uo_ml_kg_h:g} mL/kg/h for {span:g} h "
            f"({len(run)} measurements, lowest {min(o.value for o in run):g} mL/kg/h): "
            "KDIGO AKI by urine output",
            ids,
            {
                "hours_low": span,
                "measurements": len(run),
                "lowest_ml_kg_h": min(o.value for o in run),
                "threshold_ml_kg_h": config.aki.uo_ml_kg_h,
                **late_values(fact, config),
            },
            (point.event_id,),
        )
        signals.append(emit(state, fact, finding))
    return state, tuple(signals)
