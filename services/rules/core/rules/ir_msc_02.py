"""IR-MSC-02 haemodynamic or respiratory instability after UC-MSC (core layer, one rule).

Source: RULES.md §4.4 IR-MSC-02 [DC; SBP cut-offs borrowed from the 2001 sepsis organ-
dysfunction criteria]: inside `W_IR_MSC` = [MSC start, MSC end + 24 h], systolic BP < 90
mmHg or a fall >= 40 mmHg from the pre-infusion value (the last SBP in the 24 h before the
start [DC]), SpO2 < 90 %, or heart rate > 120/min. U0 to the investigator. Fires once per
infusion.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig
from services.rules.core.rules._alerting import INV, Finding, emit, fresh, late_values, note_episode
from services.rules.core.rules._procedures import (
    MSC,
    baseline_before,
    latest_reaction,
    procedure_values,
)
from services.rules.core.rules._triggers import on
from services.rules.core.state import Observation, ParticipantState, Procedure

RULE_ID: Final = "IR-MSC-02"
RULE_VERSION: Final = 1
KINDS: Final = ("sbp", "spo2", "hr")


#: Only a new SBP, SpO2 or heart rate (`fresh`).
TRIGGERS: Final = on(kinds=KINDS)


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise IR-MSC-02 for the first unstable vital sign of an infusion's window."""
    signals: list[SignalRaised] = []
    # The vital signs of one fact share a time: find its infusion once (treatments do not
    # change here, only the raised keys and episodes).
    infusions: dict[datetime, Procedure | None] = {}
    for vital in fresh(state, fact, *KINDS):
        if vital.at not in infusions:
            infusions[vital.at] = latest_reaction(state, vital.at, MSC, config)
        infusion = infusions[vital.at]
        if infusion is None or f"{RULE_ID}|proc:{infusion.event_id}" in state.raised:
            continue
        problem = unstable(state, vital, infusion, config)
        if problem is None:
            continue
        state, _ = note_episode(state, fact, family=RULE_ID, at=vital.at, level=1, config=config)
        finding = Finding(
            RULE_ID,
            RULE_VERSION,
            "infusion_reaction",
            "Instability after UC-MSC infusion",
            Urgency.U0,
            INV,
            f"{problem} within W_IR_MSC",
            (vital.event_id, infusion.event_id),
            {
                "finding": problem,
                **procedure_values(infusion, vital.at, window="W_IR_MSC"),
                **late_values(fact, config),
            },
            (vital.event_id, infusion.event_id),
        )
        signals.append(emit(state, fact, finding))
        state = state.with_raised(f"{RULE_ID}|proc:{infusion.event_id}")
    return state, tuple(signals)


def unstable(
    state: ParticipantState, vital: Observation, procedure: Procedure, config: TrialConfig
) -> str | None:
    """Describe why a vital sign is unstable after a procedure (SBP, SpO2, HR), if it is."""
    cfg = config.procedures
    if vital.kind == "sbp":
        if vital.value < cfg.sbp_low:
            return f"SBP {vital.value:g} mmHg < {cfg.sbp_low:g}"
        baseline = baseline_before(state, "sbp", procedure, config)
        if baseline is not None and round(baseline - vital.value, 9) >= cfg.sbp_fall:
            return (
                f"SBP fell {baseline - vital.value:g} mmHg from {baseline:g} before the procedure"
            )
    if vital.kind == "spo2" and vital.value < cfg.spo2_low:
        return f"SpO2 {vital.value:g} % < {cfg.spo2_low:g}"
    if vital.kind == "hr" and vital.value > cfg.heart_rate_high:
        return f"heart rate {vital.value:g}/min > {cfg.heart_rate_high:g}"
    if vital.kind == "map" and vital.value < cfg.map_low:
        return f"MAP {vital.value:g} mmHg < {cfg.map_low:g}"
    return None
