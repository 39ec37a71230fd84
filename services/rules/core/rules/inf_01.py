"""INF-01 fever (core layer, one rule).

Source: RULES.md §4.3 INF-01 and CTCAE v5 Fever (G1 38.0-39.0 °C, G2 > 39.0-40.0, G3 > 40.0):
a temperature (LOINC 8310-5, °C) >= 38.0. Inside `W_IR_MSC` = [MSC start, MSC end + 24 h] it
is tagged "post-MSC fever" (the expected MSC pattern, still an AE) and is U1; > 40.0 °C is
U0; any other fever U2. Investigator and safety officer (routing decides who hears U2).
INF-06 biomarkers annotate it. Episodes: family "INF-01", level = urgency. Like every
infection-family signal it says whether it follows a procedure (INF-07): the UC-MSC of its
`W_IR_MSC` when there is one, else the UC-MSC or PE whose infection window holds it.
"""

from __future__ import annotations

from typing import Final

from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig
from services.rules.core.rules._alerting import (
    INV_SO,
    RANK,
    Finding,
    Value,
    emit,
    fresh,
    late_values,
    note_episode,
)
from services.rules.core.rules._infection import biomarkers
from services.rules.core.rules._procedures import (
    MSC,
    infection_phrase,
    infection_tag,
    latest_reaction,
    tagged,
)
from services.rules.core.rules._triggers import on
from services.rules.core.state import Observation, ParticipantState, Procedure

RULE_ID: Final = "INF-01"
RULE_VERSION: Final = 1
_G1_MAX: Final = 39.0  # CTCAE v5 Fever grade 1 upper bound, °C


#: Only a new temperature (`fresh`).
TRIGGERS: Final = on(kinds=("temp",))


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise INF-01 for a temperature >= 38.0 °C (once per episode, again on escalation)."""
    signals: list[SignalRaised] = []
    for temp in fresh(state, fact, "temp"):
        if temp.value < config.infection.fever_c:
            continue
        msc = latest_reaction(state, temp.at, MSC, config)
        urgency = (
            Urgency.U0
            if temp.value > config.infection.fever_high_c
            else Urgency.U1
            if msc is not None
            else Urgency.U2
        )
        state, fire = note_episode(
            state, fact, family=RULE_ID, at=temp.at, level=RANK[urgency], config=config
        )
        if fire:
            signals.append(emit(state, fact, _finding(state, fact, temp, msc, urgency, config)))
    return state, tuple(signals)


def _procedure_tag(
    state: ParticipantState, temp: Observation, msc: Procedure | None, config: TrialConfig
) -> tuple[dict[str, Value], Procedure | None, str]:
    """The procedure a fever follows: the UC-MSC of its W_IR_MSC, else its infection window."""
    if msc is not None:
        where = " within 24 h of a UC-MSC infusion (post-MSC fever: expected pattern, still an AE)"
        return tagged(state, msc, temp.at, window="W_IR_MSC"), msc, where
    values, procedure = infection_tag(state, temp.at, config)
    return values, procedure, infection_phrase(procedure, temp.at)


def _finding(
    state: ParticipantState,
    fact: ClinicalFact,
    temp: Observation,
    msc: Procedure | None,
    urgency: Urgency,
    config: TrialConfig,
) -> Finding:
    grade = 1 if temp.value <= _G1_MAX else 2 if temp.value <= config.infection.fever_high_c else 3
    markers, marker_ids = biomarkers(state, temp.at, config)
    tag = "post-MSC fever" if msc is not None else None
    window, procedure, where = _procedure_tag(state, temp, msc, config)
    likely = "; procalcitonin/CRP: infection likely" if markers["infection_likely"] else ""
    return Finding(
        RULE_ID,
        RULE_VERSION,
        "infection",
        "Post-MSC fever" if msc is not None else "Fever",
        urgency,
        INV_SO,
        f"temperature {temp.value:g} °C (CTCAE fever grade {grade}){where}{likely}",
        (temp.event_id, *(() if procedure is None else (procedure.event_id,)), *marker_ids),
        {
            "temperature_c": temp.value,
            "ctcae_fever_grade": grade,
            "tag": tag,
            **window,
            **markers,
            **late_values(fact, config),
        },
        (temp.event_id,),
    )
