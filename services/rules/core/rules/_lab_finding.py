"""One pattern several rules share (core layer): a new result past a threshold, per episode.

Used by INF-04 (ascitic PMN) and INF-05 (blood culture growth): each new qualifying result
joins its family's episode (RULES.md §0.2) and, when it opens one, raises a U0 signal to
investigator and safety officer tagged with the procedure window it falls in (INF-07).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from schemas import ClinicalFact, SignalRaised, Urgency
from services.rules.core.config import TrialConfig
from services.rules.core.rules._alerting import (
    INV_SO,
    Finding,
    Value,
    emit,
    fresh,
    late_values,
    note_episode,
)
from services.rules.core.rules._procedures import infection_phrase, infection_tag
from services.rules.core.state import Observation, ParticipantState


@dataclass(frozen=True, slots=True)
class LabRule:
    """What distinguishes one threshold rule from another."""

    rule_id: str
    rule_version: int
    kind: str
    title: str
    meets: Callable[[Observation, TrialConfig], bool]
    describe: Callable[[Observation], str]
    value_name: str
    #: The other results a finding needs (INF-05: a commensal's second set); None when the
    #: result alone does not qualify. Without it, a qualifying result qualifies on its own.
    corroborate: Callable[[ParticipantState, Observation], tuple[Observation, ...] | None] = (
        lambda _state, _result: ()
    )
    extra_values: Callable[[Observation, tuple[Observation, ...]], dict[str, Value]] = (
        lambda _result, _others: {}
    )


def evaluate_lab_rule(
    rule: LabRule, state: ParticipantState, fact: ClinicalFact, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise `rule` for each new qualifying result that opens (or escalates) an episode."""
    signals: list[SignalRaised] = []
    for result in fresh(state, fact, rule.kind):
        others = rule.corroborate(state, result) if rule.meets(result, config) else None
        if others is None:
            continue
        state, fire = note_episode(
            state, fact, family=rule.rule_id, at=result.at, level=1, config=config
        )
        if not fire:
            continue
        signals.append(emit(state, fact, _finding(rule, state, fact, result, others, config)))
    return state, tuple(signals)


def _finding(
    rule: LabRule,
    state: ParticipantState,
    fact: ClinicalFact,
    result: Observation,
    others: tuple[Observation, ...],
    config: TrialConfig,
) -> Finding:
    tag, procedure = infection_tag(state, result.at, config)
    return Finding(
        rule.rule_id,
        rule.rule_version,
        "infection",
        rule.title,
        Urgency.U0,
        INV_SO,
        rule.describe(result) + infection_phrase(procedure, result.at),
        (
            result.event_id,
            *(o.event_id for o in others),
            *(() if procedure is None else (procedure.event_id,)),
        ),
        {
            rule.value_name: result.value,
            **rule.extra_values(result, others),
            **tag,
            **late_values(fact, config),
        },
        (result.event_id,),
    )
