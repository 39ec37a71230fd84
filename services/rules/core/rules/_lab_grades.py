"""What the CTCAE lab-grade rules share (core layer): LOINC kind → CTCAE term, grading.

RULES.md §7: `calculators.ctcae.grade` on the result in its canonical SI unit, with the ULN /
LLN of the result's normalised reference range and, for the baseline-relative terms (ALT,
AST, bilirubin, creatinine), the baseline = last value before randomisation (§0.2). A term
that needs a reference limit the result does not carry is not graded [DC] (INR needs none).
The baseline grade is graded from the baseline alone (its own range, else the result's).
Only results at or after randomisation are graded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from schemas import ClinicalFact, Role, SignalRaised, Urgency
from services.rules.core.calculators import GradingContext, grade
from services.rules.core.config import TrialConfig
from services.rules.core.rules._alerting import (
    Finding,
    emit,
    fresh,
    late_values,
    note_episode,
)
from services.rules.core.state import Observation, ParticipantState

#: kind -> (CTCAE v5.0 term, reference limit it needs, graded against the baseline).
TERMS: Final[dict[str, tuple[str, str | None, bool]]] = {
    "alt": ("Alanine aminotransferase increased", "uln", True),
    "ast": ("Aspartate aminotransferase increased", "uln", True),
    "bilirubin": ("Blood bilirubin increased", "uln", True),
    "inr": ("INR increased", None, False),
    "platelets": ("Platelet count decreased", "lln", False),
    "neutrophils": ("Neutrophil count decreased", "lln", False),
    "wbc": ("White blood cell decreased", "lln", False),
    "hb": ("Anemia", "lln", False),
    "creatinine": ("Creatinine increased", "uln", True),
    "ica": ("Hypocalcemia (ionised)", "lln", False),
    "sodium": ("Hyponatremia", "lln", False),
    "potassium": ("Hyperkalemia", "uln", False),
}
KINDS: Final = tuple(TERMS)


@dataclass(frozen=True, slots=True)
class Graded:
    """One post-randomisation result with its CTCAE grade and its baseline's grade."""

    result: Observation
    term: str
    grade: int
    baseline: Observation | None
    baseline_grade: int | None


@dataclass(frozen=True, slots=True)
class GradeRule:
    """What distinguishes LAB-G3 from LAB-G4."""

    rule_id: str
    rule_version: int
    grade: int
    urgency: Urgency
    recipients: tuple[Role, ...]
    title: str


def _context(result: Observation, fallback: Observation | None = None) -> GradingContext | None:
    needs = TERMS[result.kind][1]
    uln = result.high if result.high is not None or fallback is None else fallback.high
    lln = result.low if result.low is not None or fallback is None else fallback.low
    if (needs == "uln" and uln is None) or (needs == "lln" and lln is None):
        return None
    return GradingContext(uln=uln, lln=lln)


@lru_cache(maxsize=4096, typed=True)
def _grade(term: str, value: float, context: GradingContext) -> int:
    """`calculators.ctcae.grade`, remembered (issue 5: decimal maths, ~3 µs a call).

    LAB-G3, LAB-G4 and LAB-SHIFT grade every new result, and its baseline, again on each
    fact. Safe: `grade` is a pure function of these immutable, hashable arguments (a str, a
    float and a frozen dataclass of numbers), so a remembered grade is the grade; errors
    are never remembered, they raise again.
    """
    return grade(term, value, context)


def graded(state: ParticipantState, result: Observation) -> Graded | None:
    """Grade `result` (None when before randomisation, negative or without its reference)."""
    enrolled = state.enrolled_at
    context = _context(result)
    if enrolled is None or result.at < enrolled or context is None or result.value < 0:
        return None
    term, _, relative = TERMS[result.kind]
    baseline = state.baseline(result.kind)
    if relative and baseline is not None and baseline.value >= 0:
        context = GradingContext(uln=context.uln, lln=context.lln, baseline=baseline.value)
    return Graded(
        result, term, _grade(term, result.value, context), baseline, _at_baseline(baseline, result)
    )


def _at_baseline(baseline: Observation | None, result: Observation) -> int | None:
    if baseline is None or baseline.value < 0:
        return None
    context = _context(baseline, fallback=result)
    return None if context is None else _grade(TERMS[result.kind][0], baseline.value, context)


def evaluate_grade_rule(
    rule: GradeRule, state: ParticipantState, fact: ClinicalFact, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise `rule` once per (term, grade) episode for each new result of that grade."""
    signals: list[SignalRaised] = []
    for result in fresh(state, fact, *KINDS):
        found = graded(state, result)
        if found is None or not _meets(rule, found):
            continue
        state, fire = note_episode(
            state,
            fact,
            family=f"{rule.rule_id}|{result.kind}",
            at=result.at,
            level=1,
            config=config,
        )
        if fire:
            signals.append(emit(state, fact, _finding(rule, fact, found, config)))
    return state, tuple(signals)


def _meets(rule: GradeRule, found: Graded) -> bool:
    if found.grade != rule.grade:
        return False
    # LAB-G3 asks for a grade not present at baseline; LAB-G4 fires on any grade 4.
    return rule.grade == 4 or (found.baseline_grade or 0) < rule.grade


def _finding(rule: GradeRule, fact: ClinicalFact, found: Graded, config: TrialConfig) -> Finding:
    result, baseline = found.result, found.baseline
    ids = (result.event_id,)
    return Finding(
        rule.rule_id,
        rule.rule_version,
        "laboratory",
        rule.title,
        rule.urgency,
        rule.recipients,
        f"{found.term}: CTCAE v5.0 grade {found.grade} ({result.kind} {result.value:g}"
        f"{'' if result.low is None else f', LLN {result.low:g}'}"
        f"{'' if result.high is None else f', ULN {result.high:g}'}"
        f"; baseline grade {found.baseline_grade})",
        ids,
        {
            "term": found.term,
            "ctcae_grade": found.grade,
            "value": result.value,
            "lln": result.low,
            "uln": result.high,
            "baseline_value": None if baseline is None else baseline.value,
            "baseline_grade": found.baseline_grade,
            **late_values(fact, config),
        },
        ids,
    )
