"""AKI-04 possible hepatorenal syndrome (HRS-AKI), investigator to confirm (core layer).

Source: RULES.md §6 AKI-04 (ICA 2015; AASLD 2021): ICA-AKI stage >= 2 persisting >= 48 h
[DC window], without a vasopressor in that time (no shock). The other HRS-AKI criteria
(documented diuretic withdrawal and albumin 1 g/kg/day, no nephrotoxins, no proteinuria
> 500 mg/day, microhaematuria or abnormal renal ultrasound, ascites) are not facts
safetymon receives, so the signal says "possible HRS-AKI, investigator to confirm" and
lists them. Fires on the creatinine result that completes 48 h of stage >= 2; U1 to
investigator and safety officer; once per episode (family "AKI-04", RULES.md §0.2).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig, hours
from services.rules.core.rules._aki import aki_values, assess
from services.rules.core.rules._alerting import (
    INV_SO,
    Finding,
    emit,
    fresh,
    late_values,
    note_episode,
)
from services.rules.core.rules._procedures import VASOPRESSOR
from services.rules.core.rules._triggers import on
from services.rules.core.state import ParticipantState

RULE_ID: Final = "AKI-04"
RULE_VERSION: Final = 1
_STAGE_2: Final = 2
TO_CONFIRM: Final = (
    "investigator to confirm: no response 2 days after diuretic withdrawal and albumin "
    "1 g/kg/day, ascites, no shock, no nephrotoxins, no proteinuria > 500 mg/day, "
    "microhaematuria or abnormal renal ultrasound"
)


def persisting_since(state: ParticipantState, at: datetime, config: TrialConfig) -> datetime | None:
    """Start of the unbroken run of stage >= 2 assessments ending at `at` (None if not >= 2)."""
    times = sorted({o.at for o in state.series("creatinine") if o.at <= at}, reverse=True)
    since = None
    for moment in times:
        if assess(state, moment, config)[0].stage < _STAGE_2:
            break
        since = moment
    return since


#: Only a new creatinine (`fresh`); vasopressors are read, never acted on.
TRIGGERS: Final = on(kinds=("creatinine",))


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise AKI-04 when stage >= 2 has persisted 48 h without a vasopressor."""
    enrolled = state.enrolled_at
    if enrolled is None:
        return state, ()
    signals: list[SignalRaised] = []
    for at in sorted({o.at for o in fresh(state, fact, "creatinine")}):
        since = persisting_since(state, at, config)
        if since is None or since < enrolled or at - since < hours(config.aki.hrs_persist_hours):
            continue
        if any(
            p.treatment == VASOPRESSOR and since <= p.started_at <= at for p in state.procedures
        ):
            continue
        state, fire = note_episode(state, fact, family=RULE_ID, at=at, level=1, config=config)
        if not fire:
            continue
        assessment, series = assess(state, at, config)
        persisted = round((at - since).total_seconds() / 3600, 2)
        finding = Finding(
            RULE_ID,
            RULE_VERSION,
            "aki",
            "Possible hepatorenal syndrome (HRS-AKI)",
            Urgency.U1,
            INV_SO,
            f"ICA-AKI stage {assessment.ica_stage} has persisted {persisted:g} h with no "
            f"vasopressor: possible HRS-AKI; {TO_CONFIRM}",
            (series[-1].event_id,),
            {
                **aki_values(assessment, series),
                "persisting_hours": persisted,
                "stage_2_since": since.isoformat(),
                **late_values(fact, config),
            },
            (series[-1].event_id,),
        )
        signals.append(emit(state, fact, finding))
    return state, tuple(signals)
