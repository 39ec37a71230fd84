"""One pattern several rules share (core layer): an AE of a given kind inside a window.

Used by IR-MSC-01, IR-MSC-03, PE-01 (symptom route) and PE-03: the AE's onset must fall in a
window of a procedure; urgency follows the AE (grade, anaphylaxis); the rule fires once per
AE and once more if the urgency rises (RULES.md §0.2). The signal keeps its clinical urgency
even when the same report makes the AE serious: notify pages each person once per event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from schemas import ClinicalFact, Role, SignalRaised, Urgency
from services.rules.core.config import TrialConfig
from services.rules.core.rules._alerting import (
    Finding,
    ae_key,
    emit,
    escalates,
    late_values,
    note_episode,
)
from services.rules.core.rules._procedures import procedure_values
from services.rules.core.rules._shared import ae_values, touched_ae
from services.rules.core.state import AdverseEventState, ParticipantState, Procedure


@dataclass(frozen=True, slots=True)
class AEWindowRule:
    """What distinguishes one AE-in-window rule from another."""

    rule_id: str
    rule_version: int
    category: str
    title: str
    window: str
    matches: Callable[[AdverseEventState], bool]
    procedure: Callable[[ParticipantState, datetime, TrialConfig], Procedure | None]
    urgency: Callable[[AdverseEventState], Urgency]
    recipients: tuple[Role, ...]


def evaluate_ae_window_rule(
    rule: AEWindowRule, state: ParticipantState, fact: ClinicalFact, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise `rule` for the AE this fact reported, when its onset falls in the window."""
    ae = touched_ae(state, fact)
    if ae is None or not rule.matches(ae):
        return state, ()
    procedure = rule.procedure(state, ae.onset_at, config)
    if procedure is None:
        return state, ()
    urgency = rule.urgency(ae)
    if not escalates(state, rule.rule_id, ae, urgency):
        return state, ()
    state, _ = note_episode(
        state, fact, family=rule.rule_id, at=ae.onset_at, level=1, config=config
    )
    tag = procedure_values(procedure, ae.onset_at, window=rule.window)
    finding = Finding(
        rule.rule_id,
        rule.rule_version,
        rule.category,
        rule.title,
        urgency,
        rule.recipients,
        f"AE {ae.ae_ref} '{ae.term}' (CTCAE grade {ae.ctcae_grade}) began "
        f"{tag['hours_after_procedure_start']} h after the start of {procedure.treatment} "
        f"({rule.window})",
        (*ae.event_ids, procedure.event_id),
        {**ae_values(ae), **tag, "arm": state.arm, **late_values(fact, config)},
        (fact.event_id,),
    )
    signal = emit(state, fact, finding)
    return state.with_raised(ae_key(rule.rule_id, ae, urgency)), (signal,)
