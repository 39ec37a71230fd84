"""Fold facts into participant state and through the rule catalogue (core layer; pure).

The same functions serve live processing, replay and audit: the same facts in the same
order give the same states and the same signal bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from schemas import (
    AdverseEventPayload,
    AdverseEventReported,
    AdverseEventUpdated,
    ClinicalFact,
    DeathRecorded,
    FactCorrected,
    ParticipantEnrolled,
    SignalRaised,
    TreatmentAdministered,
)
from services.rules.core.rules import death, sae, susar
from services.rules.core.signals import system_signal
from services.rules.core.state import AdverseEventState, DeathInfo, ParticipantState, Procedure

Step = tuple[ParticipantState, tuple[SignalRaised, ...]]
StateKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Rule:
    """One catalogue entry: a stable id, its version and its pure `evaluate`."""

    rule_id: str
    rule_version: int
    evaluate: Callable[[ParticipantState, ClinicalFact], Step]


#: Fixed evaluation order; to add a rule, write core/rules/<name>.py and append it here.
RULES: tuple[Rule, ...] = tuple(
    Rule(module.RULE_ID, module.RULE_VERSION, module.evaluate) for module in (sae, death, susar)
)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What evaluating one fact produced; `failed` names the steps that raised (a bug)."""

    state: ParticipantState | None
    signals: tuple[SignalRaised, ...]
    failed: tuple[str, ...] = ()


def initial_state(fact: ClinicalFact) -> ParticipantState:
    """State of a participant first seen in `fact` (possibly before enrolment: arm unknown)."""
    return ParticipantState(fact.trial_id, fact.participant_id, fact.site_id)


def evolve(state: ParticipantState | None, fact: ClinicalFact) -> ParticipantState:
    """Update the projection with what `fact` says; facts the rules ignore leave it unchanged."""
    current = state or initial_state(fact)
    if isinstance(fact, ParticipantEnrolled):
        return replace(
            current, arm=fact.payload.arm.value, enrolled_at=fact.occurred_at, site_id=fact.site_id
        )
    if isinstance(fact, TreatmentAdministered):
        procedure = Procedure(fact.payload.treatment.value, fact.occurred_at, fact.event_id)
        return replace(current, procedures=(*current.procedures, procedure))
    if isinstance(fact, AdverseEventReported | AdverseEventUpdated):
        prior = current.adverse_event(fact.payload.ae_ref)
        event_ids = (*(() if prior is None else prior.event_ids), fact.event_id)
        return current.with_adverse_event(_ae(fact.payload, fact.occurred_at, event_ids))
    if isinstance(fact, DeathRecorded) and current.death is None:
        info = DeathInfo(
            fact.occurred_at,
            fact.event_id,
            fact.payload.cause_category,
            fact.payload.related_ae_ref,
        )
        return replace(current, death=info)
    if isinstance(fact, FactCorrected):
        return _correct(current, fact)
    return current


def evaluate(state: ParticipantState | None, fact: ClinicalFact) -> Step:
    """Evolve the state, then fold it through every rule in `RULES` order."""
    current = evolve(state, fact)
    signals: list[SignalRaised] = []
    for rule in RULES:
        current, raised = rule.evaluate(current, fact)
        signals.extend(raised)
    return current, tuple(signals)


def evaluate_guarded(state: ParticipantState | None, fact: ClinicalFact) -> Evaluation:
    """Evaluate like `evaluate`, but isolate a rule that raises (a defect) from the others.

    A failing rule's state change is dropped, the other rules still run, and a SYS-01 signal
    says which step failed, so a bug in one rule never silences an SAE from another.
    """
    try:
        current = evolve(state, fact)
    except Exception as exc:  # a defect in the projection: nothing else can run on this fact
        failed: tuple[str, ...] = (f"evolve:{type(exc).__name__}",)
        arm = None if state is None else state.arm
        return Evaluation(
            state, (system_signal(fact, stage="evaluate", failed=failed, arm=arm),), failed
        )
    signals: list[SignalRaised] = []
    failures: list[str] = []
    for rule in RULES:
        try:
            current, raised = rule.evaluate(current, fact)
        except Exception as exc:  # a defect in this rule: isolate it (see docstring)
            failures.append(f"{rule.rule_id}:{type(exc).__name__}")
            continue
        signals.extend(raised)
    if failures:
        failed = tuple(failures)
        signals.append(system_signal(fact, stage="evaluate", failed=failed, arm=current.arm))
        return Evaluation(current, tuple(signals), failed)
    return Evaluation(current, tuple(signals))


def replay(
    facts: Iterable[ClinicalFact],
) -> tuple[dict[StateKey, ParticipantState], tuple[SignalRaised, ...]]:
    """Fold a history exactly as live processing does; return final states and all signals."""
    states: dict[StateKey, ParticipantState] = {}
    signals: list[SignalRaised] = []
    for fact in facts:
        key = (fact.trial_id, fact.participant_id)
        outcome = evaluate_guarded(states.get(key), fact)
        if outcome.state is not None:
            states[key] = outcome.state
        signals.extend(outcome.signals)
    return states, tuple(signals)


def _ae(
    payload: AdverseEventPayload, onset_at: datetime, event_ids: tuple[UUID, ...]
) -> AdverseEventState:
    return AdverseEventState(
        ae_ref=payload.ae_ref,
        term=payload.term,
        ctcae_grade=payload.ctcae_grade,
        seriousness_criteria=tuple(c.value for c in payload.seriousness_criteria),
        planned_admission_for_procedure=payload.planned_admission_for_procedure,
        relatedness_uc_msc=payload.relatedness_uc_msc.value,
        expectedness=payload.expectedness.value,
        outcome=payload.outcome.value,
        onset_at=onset_at,
        awareness_at=payload.awareness_at,
        event_ids=event_ids,
    )


def _correct(state: ParticipantState, fact: FactCorrected) -> ParticipantState:
    """Apply a correction whose target is an AE's latest report (the AE's current values).

    Corrections of other facts do not change what SAE/death rules read yet; retractions are
    left to the signal-update rules that come with the full catalogue.
    """
    target = fact.payload.supersedes_event_id
    ae = next((a for a in state.adverse_events if a.event_ids[-1] == target), None)
    if ae is None or fact.payload.replacement is None:
        return state
    payload = AdverseEventPayload.model_validate(fact.payload.replacement)
    corrected = _ae(payload, ae.onset_at, (*ae.event_ids, fact.event_id))
    return state.with_adverse_event(replace(corrected, ae_ref=ae.ae_ref))
