"""Which rules of a rule set a fact can make act, in evaluation order (core layer; pure).

Most of the ~40 rules return at once on most facts, so calling every rule on every fact
spent the fold's time on rules with nothing to do. Each rule module declares its `TRIGGERS`
(`rules._triggers`); a fact's plan keeps, in evaluation order, the rules whose declared fact
types or observation kinds it matches, plus those with a state test (`Triggers.active`)
that the fold asks at the rule's turn. Skipping a rule that would have returned
`(state, ())` changes nothing, so the signals and states are those of running every rule
(`Dispatch.every`), which stays available as the reference (tests compare them).

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
    """One rule as the fold runs it: a stable id, its version, its pure `evaluate`, its triggers.

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


@dataclass(slots=True, eq=False)
class Dispatch:
    """The plans of one rule tuple, by (fact type, contributed kinds), made on first use.

    Held by whoever holds the rules (the engine's `RuleSet`), so the plans live exactly as
    long as the rules they were made from: a plan is a pure function of the rule tuple and
    of the fact's type and kinds, and this is its memo, not state.
    """

    rules: tuple[Rule, ...]
    #: The reference plan: every rule, in evaluation order, unconditionally.
    every: Plan = field(init=False)
    _by_key: dict[tuple[type, frozenset[str] | None], Plan] = field(
        init=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        self.every = tuple((rule, None) for rule in self.rules)

    def plan(self, fact: ClinicalFact) -> Plan:
        """The rules `fact` can make act, in evaluation order (see the module docstring)."""
        kinds = contributed_kinds(fact)
        key = (type(fact), kinds)
        found = self._by_key.get(key)
        if found is None:
            found = self._by_key[key] = _make(self.rules, type(fact), kinds)
        return found


def plan(rules: tuple[Rule, ...], fact: ClinicalFact) -> Plan:
    """The plan of `fact` over `rules`, made afresh (tests; the fold keeps a `Dispatch`)."""
    return _make(rules, type(fact), contributed_kinds(fact))


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
