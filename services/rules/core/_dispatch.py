"""Which rules of the catalogue a fact can make act, in catalogue order (core layer; pure).

Issue 5: the fold called all ~40 rules on every fact, and most returned at once. Each rule
module declares its `TRIGGERS` (`rules._triggers`); a fact's plan keeps, in catalogue order,
the rules whose declared fact types or observation kinds it matches, plus those with a
state test (`Triggers.active`) that the fold asks at the rule's turn. Skipping a rule that
would have returned `(state, ())` changes nothing, so the signals and states are those of
running every rule (`every`), which stays available as the reference (tests compare them).

Conservative by construction: a rule without triggers, a correction (it can touch any AE
or observation) and a fact of a type not listed in `_KNOWN_FACTS` run every rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from schemas import (
    AdverseEventReported,
    AdverseEventUpdated,
    ClinicalAssessmentRecorded,
    ClinicalFact,
    DeathRecorded,
    LabResultRecorded,
    ParticipantEnrolled,
    ParticipantWithdrawn,
    SAEReportedToSponsor,
    SignalRaised,
    SUSARReportedToAuthority,
    TreatmentAdministered,
    VitalSignsRecorded,
)
from services.rules.core._observing import contributed_kinds
from services.rules.core.rules._triggers import Triggers
from services.rules.core.state import ParticipantState

Step = tuple[ParticipantState, tuple[SignalRaised, ...]]
Active = Callable[[ParticipantState], bool]


@dataclass(frozen=True, slots=True)
class Rule:
    """One catalogue entry: a stable id, its version, its pure `evaluate` and its triggers.

    `triggers` (the module's `TRIGGERS`) says which facts can make the rule act; None runs
    it on every fact.
    """

    rule_id: str
    rule_version: int
    evaluate: Callable[[ParticipantState, ClinicalFact], Step]
    triggers: Triggers | None = None


#: A rule to run, with the state test that must hold at its turn (None: run it).
Planned = tuple[Rule, Active | None]
Plan = tuple[Planned, ...]

#: Fact types whose plans follow the declarations (exact types: a subclass runs every rule).
#: Listed here rather than taken from `schemas.ARRIVING_FACTS` (today the same types but
#: FactCorrected) on purpose: a fact type added to the schemas later runs every rule until
#: the rules' triggers are reviewed for it.
_KNOWN_FACTS: Final = frozenset(
    {
        ParticipantEnrolled,
        TreatmentAdministered,
        LabResultRecorded,
        VitalSignsRecorded,
        ClinicalAssessmentRecorded,
        AdverseEventReported,
        AdverseEventUpdated,
        ParticipantWithdrawn,
        DeathRecorded,
        SAEReportedToSponsor,
        SUSARReportedToAuthority,
    }
)
_KEEP = 16  # rule tuples remembered (a catalogue per trial configuration in use)


@dataclass(slots=True)
class _Plans:
    """The plans of one rule tuple by (fact type, contributed kinds), made on first use."""

    rules: tuple[Rule, ...]
    every: Plan
    by_key: dict[tuple[type, frozenset[str] | None], Plan] = field(default_factory=dict)


# Memo, not state: a plan is a pure function of the rule tuple (kept alive here, so its id
# is not reused while it is remembered) and of the fact's type and kinds.
_MEMO: dict[int, _Plans] = {}


def _plans(rules: tuple[Rule, ...]) -> _Plans:
    found = _MEMO.get(id(rules))
    if found is None or found.rules is not rules:
        if len(_MEMO) >= _KEEP:
            _MEMO.clear()
        found = _MEMO[id(rules)] = _Plans(rules, tuple((rule, None) for rule in rules))
    return found


def every(rules: tuple[Rule, ...]) -> Plan:
    """The reference plan: every rule, in catalogue order, unconditionally."""
    return _plans(rules).every


def plan(rules: tuple[Rule, ...], fact: ClinicalFact) -> Plan:
    """The rules `fact` can make act, in catalogue order (see the module docstring)."""
    plans = _plans(rules)
    kinds = contributed_kinds(fact)
    key = (type(fact), kinds)
    found = plans.by_key.get(key)
    if found is None:
        found = plans.by_key[key] = _make(rules, type(fact), kinds)
    return found


def _make(rules: tuple[Rule, ...], fact_type: type, kinds: frozenset[str] | None) -> Plan:
    if kinds is None or fact_type not in _KNOWN_FACTS:
        return tuple((rule, None) for rule in rules)
    planned: list[Planned] = []
    for rule in rules:
        triggers = rule.triggers
        if (
            triggers is None
            or issubclass(fact_type, triggers.facts)
            or not triggers.kinds.isdisjoint(kinds)
        ):
            planned.append((rule, None))
        elif triggers.active is not None:
            planned.append((rule, triggers.active))
    return tuple(planned)
