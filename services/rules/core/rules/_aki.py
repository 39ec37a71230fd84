"""What the AKI rules share (core layer): KDIGO staging of the creatinine history, episodes.

RULES.md §6: `calculators.aki.stage_aki` stages the latest creatinine (LOINC 2160-0 /
14682-9, µmol/L) against the prior 48 h (AKI-01, absolute rise ≥ 26.5 µmol/L) and the prior
7 days (AKI-02, ratio ≥ 1.5); renal replacement started in the last 48 h [DC] is stage 3.
The three rules share one episode family ("AKI", level = KDIGO stage), so a stage fires
once and the family re-fires only on escalation. Which rule speaks for a stage:
stage 1 by absolute rise → AKI-01; stage 1 by ratio only → AKI-02; stage 2–3 → AKI-03.
Only results (or RRT) at or after randomisation are assessed.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from clinical.calculators import AkiAssessment, CreatinineSample, stage_aki
from schemas import ClinicalFact, SignalRaised, TreatmentAdministered, Urgency
from services.rules.core.config import TrialConfig, days, hours
from services.rules.core.rules._alerting import (
    INV,
    INV_SO,
    Finding,
    Value,
    emit,
    fresh,
    late_values,
    note_episode,
)
from services.rules.core.rules._liver import RRT
from services.rules.core.state import Observation, ParticipantState

FAMILY = "AKI"
HRS_NOTE = "HRS-AKI work-up: stop diuretics, albumin 1 g/kg x 2 days"
_STAGE_2 = 2
_STAGE_3 = 3
_TITLES = {
    1: "Acute kidney injury, KDIGO stage 1",
    2: "Acute kidney injury, KDIGO stage 2",
    3: "Acute kidney injury, KDIGO stage 3",
}


def speaker(assessment: AkiAssessment) -> str | None:
    """The rule id that reports this assessment (None without AKI)."""
    if assessment.stage == 0:
        return None
    if assessment.stage > 1:
        return "AKI-03"
    return "AKI-01" if "absolute_rise_48h" in assessment.criteria else "AKI-02"


def assess(
    state: ParticipantState, at: datetime, config: TrialConfig
) -> tuple[AkiAssessment, tuple[Observation, ...]]:
    """Stage AKI at `at` from the creatinine results up to it and any recent RRT."""
    since = at - days(config.aki.baseline_window_days)
    series = tuple(o for o in state.series("creatinine") if since <= o.at <= at and o.value >= 0)
    rrt_since = at - hours(config.aki.rrt_current_hours)
    rrt = any(p.treatment == RRT and rrt_since <= p.started_at <= at for p in state.procedures)
    if not series:
        staged = AkiAssessment(3 if rrt else 0, "3" if rrt else None, None, None, None, ("rrt",))
        return staged, ()
    return _staged(tuple([(o.at, o.value) for o in series]), rrt=rrt), series


@lru_cache(maxsize=4096)
def _staged(points: tuple[tuple[datetime, float], ...], *, rrt: bool) -> AkiAssessment:
    """`stage_aki` of these (time, µmol/L) results, remembered (decimal maths is slow).

    AKI-01, -02 and -03 stage the same results on each creatinine fact, and AKI-04 stages
    every earlier result again. Safe: a pure function of immutable times and numbers whose
    result is frozen; errors are never remembered, they raise again.
    """
    return stage_aki([CreatinineSample(at, value) for at, value in points], rrt=rrt)


def evaluate_aki(
    rule: tuple[str, int], state: ParticipantState, fact: ClinicalFact, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise `rule` for each AKI stage it speaks for that opens or escalates the episode."""
    enrolled = state.enrolled_at
    if enrolled is None:
        return state, ()
    signals: list[SignalRaised] = []
    for at in _times(state, fact):
        assessment, series = assess(state, at, config)
        if at < enrolled or speaker(assessment) != rule[0]:
            continue
        state, fire = note_episode(
            state, fact, family=FAMILY, at=at, level=assessment.stage, config=config
        )
        if fire:
            finding = _finding(rule, fact, assessment, series, config)
            signals.append(emit(state, fact, finding))
    return state, tuple(signals)


def _times(state: ParticipantState, fact: ClinicalFact) -> tuple[datetime, ...]:
    if isinstance(fact, TreatmentAdministered):
        return (fact.occurred_at,) if fact.payload.treatment.value == RRT else ()
    return tuple(sorted({o.at for o in fresh(state, fact, "creatinine")}))


def _finding(
    rule: tuple[str, int],
    fact: ClinicalFact,
    assessment: AkiAssessment,
    series: tuple[Observation, ...],
    config: TrialConfig,
) -> Finding:
    stage = assessment.stage
    values = aki_values(assessment, series)
    if stage == _STAGE_2:
        values["note"] = HRS_NOTE
    staged = series[-1:] if series else ()
    ids = tuple(o.event_id for o in staged) or (fact.event_id,)
    return Finding(
        rule[0],
        rule[1],
        "aki",
        _TITLES[stage],
        Urgency.U0 if stage == _STAGE_3 else Urgency.U1,
        INV_SO if stage == _STAGE_3 else INV,
        f"KDIGO stage {stage} (ICA {assessment.ica_stage}) by {', '.join(assessment.criteria)}"
        + (f"; {HRS_NOTE}" if stage == _STAGE_2 else ""),
        ids,
        {**values, **late_values(fact, config)},
        ids,
    )


def aki_values(assessment: AkiAssessment, series: tuple[Observation, ...]) -> dict[str, Value]:
    """Signal values: stage, criteria and the creatinine evidence (µmol/L)."""
    return {
        "kdigo_stage": assessment.stage,
        "ica_stage": assessment.ica_stage,
        "criteria": ",".join(assessment.criteria),
        "creatinine_umol_l": series[-1].value if series else None,
        "absolute_rise_umol_l": _number(assessment.absolute_rise),
        "baseline_umol_l": _number(assessment.baseline),
        "ratio": _number(assessment.ratio),
    }


def _number(value: object) -> float | None:
    return None if value is None else round(float(str(value)), 4)
