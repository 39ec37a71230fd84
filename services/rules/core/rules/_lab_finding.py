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
    emit,
    fresh,
    late_values,
    note_episode,
)
from services.rules.core.rules._procedures import infection_tag
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


def evaluate_lab_rule(
    rule: LabRule, state: ParticipantState, fact: ClinicalFact, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise `rule` for each new qualifying result that opens (or escalates) an episode."""
    signals: list[SignalRaised] = []
    for result in fresh(state, fact, rule.kind):
        if not rule.meets(result, config):
            continue
        state, fire = note_episode(
            state, fact, family=rule.rule_id, at=result.at, level=1, config=config
        )
        if not fire:
            continue
        tag, procedure = infection_tag(state, result.at, config)
        finding = Finding(
            rule.rule_id,
            rule.rule_version,
            "infection",
            rule.title,
            Urgency.U0,
            INV_SO,
            rule.describe(result)
            + (
                ""
                if procedure is None
                else f"; within the infection window of {procedure.treatment}"
            ),
            (result.event_id, *(() if procedure is None else (procedure.event_id,))),
            {rule.value_name: result.value, **tag, **late_values(fact, config)},
            (result.event_id,),
        )
        signals.append(emit(state, fact, finding))
    return state, tuple(signals)
