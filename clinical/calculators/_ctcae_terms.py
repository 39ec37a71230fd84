"""Per-term CTCAE v5.0 lab graders behind `ctcae.grade` (rules core, private).

Source: NCI CTCAE v5.0 (27 Nov 2017) as transcribed in pharmaverse/admiral
`ncictcaev5.json`, with the semantics of RULES.md §7: "> A – B" means A < x ≤ B,
"< A – B" means B ≤ x < A, criteria are evaluated from grade 4 down, else grade 0.

Absolute grades need no reference range. CTCAE v5.0 writes only grade 1 of the count and
electrolyte terms against the LLN/ULN ("< LLN – 75,000/mm3"); grades 2-4 are absolute
(platelets < 75 / 50 / 25 x10^9/L, neutrophils < 1.5 / 1.0 / 0.5, WBC < 3.0 / 2.0 / 1.0,
anaemia Hb < 100 / 80 g/L, hyponatraemia 125-129 / 120-124 / < 120 mmol/L, hyperkalaemia
> 5.5 / 6.0 / 7.0 mmol/L, ionised calcium < 1.0 / 0.9 / 0.8 mmol/L; RULES.md §7 table). So
without the limit a value past the grade-2 cut is graded; a value short of it could be
grade 0 or 1 and still needs the limit (`MissingInputError`). INR (v5.0: > 1.2 / 1.5 / 2.5,
no ULN multiple) and fever need none at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, TypeAlias

from clinical.calculators._numbers import Numeric, optional, required
from clinical.calculators.errors import MissingInputError

#: Grade-1..grade-4 boundaries of one term; None where a grade has no lab criterion.
Cuts: TypeAlias = tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]
_FEVER_G4_HOURS: Final = Decimal(24)


@dataclass(frozen=True, slots=True)
class GradingContext:
    """What a grade may depend on besides the value; every number in the value's unit.

    Attributes:
        uln: upper limit of normal ("increased" terms).
        lln: lower limit of normal ("decreased" terms).
        baseline: the participant's baseline; abnormal when above the ULN [DC, admiral].
        anticoagulated: INR increased is then graded against the baseline.
        symptomatic: Hyponatremia 125–129 mmol/L is then grade 3.
        hours_above_40: Fever: how long the temperature has stayed above 40.0 °C.

    """

    uln: Numeric | None = None
    lln: Numeric | None = None
    baseline: Numeric | None = None
    anticoagulated: bool = False
    symptomatic: bool = False
    hours_above_40: Numeric | None = None


Grader: TypeAlias = Callable[[Decimal, GradingContext], int]


def above(value: Decimal, cuts: Cuts, *, inclusive_g1: bool = False) -> int:
    """Grade an "increased" term: the highest grade whose cut the value exceeds."""
    for grade in (4, 3, 2, 1):
        cut = cuts[grade - 1]
        if cut is not None and (value > cut or (inclusive_g1 and grade == 1 and value == cut)):
            return grade
    return 0


def below(value: Decimal, cuts: Cuts) -> int:
    """Grade a "decreased" term: the highest grade whose cut the value is under."""
    for grade in (4, 3, 2, 1):
        cut = cuts[grade - 1]
        if cut is not None and value < cut:
            return grade
    return 0


def _times(reference: Decimal, factors: tuple[str | None, ...]) -> Cuts:
    g1, g2, g3, g4 = (None if f is None else reference * Decimal(f) for f in factors)
    return g1, g2, g3, g4


def _fixed(*cuts: str | None) -> tuple[Decimal | None, ...]:
    return tuple(None if c is None else Decimal(c) for c in cuts)


def _baseline_abnormal(context: GradingContext, uln: Decimal) -> Decimal | None:
    baseline = optional(context.baseline, name="baseline")
    return baseline if baseline is not None and baseline > uln else None


def aminotransferase(value: Decimal, context: GradingContext) -> int:
    """ALT/AST increased: × ULN, or × baseline (G1 from 1.5, inclusive) when it is abnormal."""
    uln = required(context.uln, name="uln")
    baseline = _baseline_abnormal(context, uln)
    if baseline is not None:
        return above(value, _times(baseline, ("1.5", "3", "5", "20")), inclusive_g1=True)
    return above(value, _times(uln, ("1", "3", "5", "20")))


def bilirubin(value: Decimal, context: GradingContext) -> int:
    """Blood bilirubin increased: × ULN, or × baseline when the baseline is abnormal."""
    uln = required(context.uln, name="uln")
    baseline = _baseline_abnormal(context, uln)
    reference = uln if baseline is None else baseline
    return above(value, _times(reference, ("1", "1.5", "3", "10")))


def inr(value: Decimal, context: GradingContext) -> int:
    """INR increased: absolute cuts, or × baseline when on anticoagulation."""
    if context.anticoagulated:
        baseline = required(context.baseline, name="baseline")
        return above(value, _times(baseline, ("1", "1.5", "2.5", None)))
    return above(value, (Decimal("1.2"), Decimal("1.5"), Decimal("2.5"), None))


def creatinine(value: Decimal, context: GradingContext) -> int:
    """Creatinine increased: max(grade by ULN, grade by baseline) [DC, RULES.md §7 notes]."""
    by_uln = above(value, _times(required(context.uln, name="uln"), ("1", "1.5", "3", "6")))
    baseline = optional(context.baseline, name="baseline")
    if baseline is None:
        return by_uln
    return max(by_uln, above(value, _times(baseline, (None, "1.5", "3", None))))


def decreased(g2: str, g3: str, g4: str | None) -> Grader:
    """Build a grader for "< LLN – g2", "< g2 – g3", "< g3 – g4", "< g4"."""
    lower = _fixed(g2, g3, g4)

    def grade(value: Decimal, context: GradingContext) -> int:
        lln = optional(context.lln, name="lln")
        found = below(value, (lln, lower[0], lower[1], lower[2]))
        if lln is None and found == 0:
            # Above the absolute grade-2 cut: grade 0 or 1, which only the LLN tells apart.
            raise MissingInputError("lln is required", field="lln")
        return found

    return grade


def hyponatremia(value: Decimal, context: GradingContext) -> int:
    """Hyponatremia: G2 125 ≤ Na < 130 (G3 if symptomatic), G3 120 ≤ Na < 125, G4 < 120."""
    grade = decreased("130", "125", "120")(value, context)
    return 3 if grade == 2 and context.symptomatic else grade


def hyperkalemia(value: Decimal, context: GradingContext) -> int:
    """Hyperkalemia: "> ULN – 5.5", "> 5.5 – 6.0", "> 6.0 – 7.0", "> 7.0" mmol/L."""
    uln = optional(context.uln, name="uln")
    found = above(value, (uln, Decimal("5.5"), Decimal("6.0"), Decimal("7.0")))
    if uln is None and found == 0:
        # At or below 5.5 mmol/L: grade 0 or 1, which only the ULN tells apart.
        raise MissingInputError("uln is required", field="uln")
    return found


def fever(value: Decimal, context: GradingContext) -> int:
    """Fever (°C): G1 38.0–39.0, G2 > 39.0–40.0, G3 > 40.0 for ≤ 24 h, G4 > 40.0 for > 24 h."""
    grade = above(
        value, (Decimal("38.0"), Decimal("39.0"), Decimal("40.0"), None), inclusive_g1=True
    )
    hours = optional(context.hours_above_40, name="hours_above_40")
    return 4 if grade == 3 and hours is not None and hours > _FEVER_G4_HOURS else grade
