"""PE-02 hypotension during or after plasma exchange (core layer, one rule).

Source: RULES.md §4.5 PE-02 [DC]: inside `W_IR_PE` = [PE start, PE end + 6 h], systolic BP <
90 mmHg, MAP < 65 mmHg, or a systolic fall >= 40 mmHg from the pre-PE value (last SBP in the
24 h before the start [DC]). A vasopressor started in the window -> U0; otherwise U1. To the
investigator. Fires once per session, and once more when a vasopressor escalates it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig
from services.rules.core.rules._alerting import INV, Finding, emit, fresh, late_values, note_episode
from services.rules.core.rules._procedures import (
    PE,
    VASOPRESSOR,
    in_reaction_window,
    latest_reaction,
    procedure_values,
)
from services.rules.core.rules._triggers import TREATMENT, on
from services.rules.core.rules.ir_msc_02 import unstable
from services.rules.core.state import ParticipantState, Procedure

RULE_ID: Final = "PE-02"
RULE_VERSION: Final = 1
KINDS: Final = ("sbp", "map")


#: A vasopressor (a treatment fact: only one carries a procedure's event id) or a
#: new SBP / MAP (`fresh`).
TRIGGERS: Final = on(*TREATMENT, kinds=KINDS)


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise PE-02 for hypotension (U1) or a vasopressor (U0) in a session's W_IR_PE."""
    found: list[tuple[Procedure, str]] = []
    sessions: dict[datetime, Procedure | None] = {}  # one look per time (vitals share one)
    for vital in fresh(state, fact, *KINDS):
        if vital.at not in sessions:
            sessions[vital.at] = latest_reaction(state, vital.at, PE, config)
        session = sessions[vital.at]
        problem = None if session is None else unstable(state, vital, session, config)
        if session is not None and problem is not None:
            found.append((session, problem))
    mine = fact.event_id.int  # UUIDs are equal exactly when their ints are (compared in C)
    for pressor in (
        p for p in state.procedures if p.event_id.int == mine and p.treatment == VASOPRESSOR
    ):
        session = latest_reaction(state, pressor.started_at, PE, config)
        if session is not None:
            found.append((session, "vasopressor started"))
    signals: list[SignalRaised] = []
    for session, problem in found:
        urgency = Urgency.U0 if _pressor_in_window(state, session, config) else Urgency.U1
        key = f"{RULE_ID}|proc:{session.event_id}"
        if f"{key}|U0" in state.raised or f"{key}|{urgency.value}" in state.raised:
            continue
        state, _ = note_episode(
            state, fact, family=RULE_ID, at=session.started_at, level=1, config=config
        )
        signals.append(emit(state, fact, _finding(fact, session, problem, urgency, config)))
        state = state.with_raised(f"{key}|{urgency.value}")
    return state, tuple(signals)


def _pressor_in_window(state: ParticipantState, session: Procedure, config: TrialConfig) -> bool:
    return any(
        p.treatment == VASOPRESSOR and in_reaction_window(session, p.started_at, config)
        for p in state.procedures
    )


def _finding(
    fact: ClinicalFact, session: Procedure, problem: str, urgency: Urgency, config: TrialConfig
) -> Finding:
    return Finding(
        RULE_ID,
        RULE_VERSION,
        "plasma_exchange",
        "Hypotension after plasma exchange",
        urgency,
        INV,
        f"{problem} within W_IR_PE" + (" (vasopressor started)" if urgency is Urgency.U0 else ""),
        (fact.event_id, session.event_id),
        {
            "finding": problem,
            "vasopressor": urgency is Urgency.U0,
            **procedure_values(session, fact.occurred_at, window="W_IR_PE"),
            **late_values(fact, config),
        },
        (fact.event_id, session.event_id),
    )
