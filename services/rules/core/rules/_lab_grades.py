"""What the CTCAE lab-grade rules share (core layer): LOINC kind → CTCAE term, grading.

RULES.md §7: `calculators.ctcae.grade` on the result in its canonical SI unit, with the ULN /
LLN of the result's normalised reference range and, for the baseline-relative terms (ALT,
AST, bilirubin, creatinine), the baseline = last value before randomisation (§0.2). A result
without its reference limit gets the grade CTCAE v5.0 defines by absolute values (counts,
Hb, sodium, potassium, ionised calcium: grades 2-4; INR needs no limit at all) and its
signal says `reference_range_missing`; a grade only the limit decides (grade 0 or 1, or a
×ULN term) is not given [DC]. The baseline grade is graded from the baseline alone (its own
range, else the result's). Only results at or after randomisation are graded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from clinical.calculators import GradingContext, MissingInputError, grade
from schemas import ClinicalFact, Role, SignalRaised, Urgency
from services.rules.core.config import TrialConfig
from services.rules.core.rules._alerting import (
    Finding,
    Value,
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


def range_missing(kind: str, low: float | None, high: float | None) -> bool:
    """Tell whether a result lacks the reference limit its CTCAE term is written against."""
    needs = TERMS[kind][1]
    return (needs == "uln" and high is None) or (needs == "lln" and low is None)


@lru_cache(maxsize=4096, typed=True)
def _grade(term: str, value: float, context: GradingContext) -> int:
    """`calculators.ctcae.grade`, remembered (decimal maths, ~3 µs a call, on every lab fact).

    LAB-G3, LAB-G4 and LAB-SHIFT grade every new result, and its baseline, again on each
    fact. Safe: `grade` is a pure function of these immutable, hashable arguments (a str, a
    float and a frozen dataclass of numbers), so a remembered grade is the grade; errors
    are never remembered, they raise again.
    """
    return grade(term, value, context)


def _grade_or_none(term: str, value: float, context: GradingContext) -> int | None:
    """The grade, or None when only a reference limit the result lacks could decide it."""
    try:
        return _grade(term, value, context)
    except MissingInputError:
        return None


def graded(state: ParticipantState, result: Observation) -> Graded | None:
    """Grade `result` (None when before randomisation, negative or without its reference)."""
    enrolled = state.enrolled_at
    if enrolled is None or result.at < enrolled or result.value < 0:
        return None
    baseline = state.baseline(result.kind)
    limits = None if baseline is None else (baseline.value, baseline.low, baseline.high)
    grades = _grades(result.kind, result.value, result.low, result.high, limits)
    if grades is None:
        return None
    return Graded(result, TERMS[result.kind][0], grades[0], baseline, grades[1])


Limits = tuple[float, float | None, float | None]  # a baseline's value, LLN and ULN


@lru_cache(maxsize=8192, typed=True)
def _grades(
    kind: str, value: float, low: float | None, high: float | None, baseline: Limits | None
) -> tuple[int, int | None] | None:
    """The grade of a result and of its baseline (None when only a missing limit decides it).

    Remembered (the three lab rules grade each new result, building grading
    contexts each time). Safe: a pure function of these numbers and strings; errors are
    never remembered, and the result is graded before its baseline, as before.
    """
    term, _needs, relative = TERMS[kind]
    context = GradingContext(uln=high, lln=low)
    if relative and baseline is not None and baseline[0] >= 0:
        context = GradingContext(uln=high, lln=low, baseline=baseline[0])
    result_grade = _grade_or_none(term, value, context)
    if result_grade is None:
        return None
    if baseline is None or baseline[0] < 0:
        return result_grade, None
    # The baseline's own limits, else the result's.
    base_value, base_low, base_high = baseline
    base_context = GradingContext(
        uln=high if base_high is None else base_high, lln=low if base_low is None else base_low
    )
    return result_grade, _grade_or_none(term, base_value, base_context)


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


def range_values(result: Observation) -> dict[str, Value]:
    """`reference_range_missing: True` when the grade was given without the result's limit."""
    return (
        {"reference_range_missing": True}
        if range_missing(result.kind, result.low, result.high)
        else {}
    )


def _finding(rule: GradeRule, fact: ClinicalFact, found: Graded, config: TrialConfig) -> Finding:
    result, baseline = found.result, found.baseline
    ids = (result.event_id,)
    unranged = range_missing(result.kind, result.low, result.high)
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
        f"; baseline grade {found.baseline_grade})"
        + ("; no reference range: graded on CTCAE absolute values" if unranged else ""),
        ids,
        {
            "term": found.term,
            "ctcae_grade": found.grade,
            "value": result.value,
            "lln": result.low,
            "uln": result.high,
            "baseline_value": None if baseline is None else baseline.value,
            "baseline_grade": found.baseline_grade,
            **range_values(result),
            **late_values(fact, config),
        },
        ids,
    )
