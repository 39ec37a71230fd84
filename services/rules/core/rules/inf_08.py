"""INF-08 catheter-related infection (core layer, one rule).

Source: RULES.md §4.3 INF-08 and §4.5 PE-05 [DC]: an AE Catheter related infection (CTCAE
LLT 10007810) -> U1; with a positive blood culture (INF-05) collected within 72 h of its
onset [DC] -> U0 (catheter-related bloodstream infection also counts for STOP-01).
Investigator and safety officer. A positive culture arriving after the AE escalates it. A
culture counts as INF-05 counts it: a common skin commensal only from two separate sets.
Tagged with the procedure whose infection window contains the onset (INF-07).
"""

from __future__ import annotations

from typing import Final

from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig, hours
from services.rules.core.rules._alerting import (
    INV_SO,
    Finding,
    ae_key,
    emit,
    escalates,
    fresh,
    late_values,
    note_episode,
)
from services.rules.core.rules._infection import is_catheter_infection_ae
from services.rules.core.rules._procedures import infection_tag
from services.rules.core.rules._shared import ae_values, touched_ae
from services.rules.core.rules._triggers import AE_FACTS, on
from services.rules.core.rules.inf_05 import second_sets
from services.rules.core.state import AdverseEventState, Observation, ParticipantState

RULE_ID: Final = "INF-08"
RULE_VERSION: Final = 1


#: The AE a report or update just set, or a new blood culture (`fresh`).
TRIGGERS: Final = on(*AE_FACTS, kinds=("culture",))


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise INF-08 for a catheter infection AE; again at U0 once a culture grows."""
    new_growth = any(second_sets(state, o) is not None for o in fresh(state, fact, "culture"))
    if touched_ae(state, fact) is None and not new_growth:
        return state, ()
    # A growth concerns every catheter infection AE, an AE fact its own AE (if one): read
    # from the AE map's indexes, in ref order as a scan of all AEs would find them.
    aes = state.adverse_events
    candidates = (
        aes.subset(is_catheter_infection_ae)
        if new_growth
        else tuple(ae for ae in aes.holding(fact.event_id) if is_catheter_infection_ae(ae))
    )
    signals: list[SignalRaised] = []
    for ae in candidates:
        state, _ = note_episode(state, fact, family=RULE_ID, at=ae.onset_at, level=1, config=config)
        cultures = _cultures(state, ae, config)
        urgency = Urgency.U0 if cultures else Urgency.U1
        if not escalates(state, RULE_ID, ae, urgency):
            continue
        signals.append(emit(state, fact, _finding(state, fact, ae, cultures, urgency, config)))
        state = state.with_raised(ae_key(RULE_ID, ae, urgency))
    return state, tuple(signals)


def _cultures(
    state: ParticipantState, ae: AdverseEventState, config: TrialConfig
) -> list[Observation]:
    span = hours(config.infection.catheter_culture_window_hours)
    return [
        o
        for o in state.series("culture")
        if abs(o.at - ae.onset_at) <= span and second_sets(state, o) is not None
    ]


def _finding(
    state: ParticipantState,
    fact: ClinicalFact,
    ae: AdverseEventState,
    cultures: list[Observation],
    urgency: Urgency,
    config: TrialConfig,
) -> Finding:
    tag, procedure = infection_tag(state, ae.onset_at, config)
    blood = " with a positive blood culture (bloodstream infection)" if cultures else ""
    return Finding(
        RULE_ID,
        RULE_VERSION,
        "infection",
        "Catheter-related infection",
        urgency,
        INV_SO,
        f"AE {ae.ae_ref} '{ae.term}' (CTCAE grade {ae.ctcae_grade}){blood}",
        (
            *ae.event_ids,
            *(o.event_id for o in cultures),
            *(() if procedure is None else (procedure.event_id,)),
        ),
        {**ae_values(ae), "bacteraemia": bool(cultures), **tag, **late_values(fact, config)},
        (ae.event_ids[0], *(o.event_id for o in cultures)),
    )
