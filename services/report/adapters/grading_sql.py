"""CTCAE v5.0 lab grading and OPTN MELD as DuckDB SQL expressions (adapters layer).

The rules grade one result at a time in Python (`clinical/calculators`); a DSMB
report grades every result of the trial at once, so the same criteria (RULES.md §7, §5.1)
are compiled here into one set-based SQL CASE. Values and limits are compared as
DECIMAL(18, 6) against decimal literals, the exact arithmetic the calculators use, so a value
on a boundary grades the same in both; `tests/unit/report/test_grading_sql.py` checks every
RULES.md vector and random values against the calculators themselves.
"""

from __future__ import annotations

from typing import Final

_D: Final = "DECIMAL(18, 6)"


def _dec(expr: str) -> str:
    return f"CAST({expr} AS {_D})"


def _above(
    value: str, reference: str | None, cuts: tuple[str | None, ...], *, g1_inclusive: bool = False
) -> str:
    """Grade 4..1 for the first cut the value exceeds; cuts are factors of `reference`."""
    arms = []
    for grade, cut in zip((4, 3, 2, 1), reversed(cuts), strict=True):
        if cut is None:
            continue
        bound = f"{reference} * {cut}" if reference is not None else cut
        operator = ">=" if g1_inclusive and grade == 1 else ">"
        arms.append(f"WHEN {value} {operator} {bound} THEN {grade}")
    return f"(CASE {' '.join(arms)} ELSE 0 END)"


def _below(value: str, cuts: tuple[str | None, ...]) -> str:
    """Grade 4..1 for the first cut the value is under (cuts: G1 (the LLN) .. G4)."""
    arms = [
        f"WHEN {value} < {cut} THEN {grade}"
        for grade, cut in zip((4, 3, 2, 1), reversed(cuts), strict=True)
        if cut is not None
    ]
    return f"(CASE {' '.join(arms)} ELSE 0 END)"


def _below_absolute(value: str, lln: str, cuts: tuple[str | None, ...]) -> str:
    """A "decreased" term: G1 under the LLN, G2-G4 under absolute cuts (G2 cut first).

    With the LLN missing, a value at or above the G2 cut is NULL (grade 0 or 1: unknown).
    """
    graded = _below(value, (lln, *cuts))
    return f"CASE WHEN {lln} IS NULL AND {value} >= {cuts[0]} THEN NULL ELSE {graded} END"


def grade_sql(kind: str, value: str, low: str, high: str, baseline: str) -> str:
    """SQL for the CTCAE grade (0-4) of a `kind` value; NULL when it needs a missing limit.

    As `clinical.calculators.ctcae.grade`: the absolute grades of the count and electrolyte
    terms are given without the LLN/ULN; a grade that only the limit decides is NULL.

    Args:
        kind: SQL expression of the lab kind ('alt', 'inr', ... as in the catalogue).
        value: SQL expression of the value in its canonical SI unit.
        low: the result's LLN in that unit.
        high: the result's ULN in that unit.
        baseline: the participant's baseline value, or NULL (baseline-relative terms only).

    """
    v, lo, hi, b = _dec(value), _dec(low), _dec(high), _dec(baseline)
    by_kind = {
        # ALT/AST: × ULN, or × baseline (G1 from 1.5 inclusive) when the baseline is abnormal.
        "alt": f"CASE WHEN {hi} IS NULL THEN NULL WHEN {b} > {hi} THEN "
        f"{_above(v, b, ('1.5', '3.0', '5.0', '20.0'), g1_inclusive=True)} "
        f"ELSE {_above(v, hi, ('1.0', '3.0', '5.0', '20.0'))} END",
        # Bilirubin: the same cuts against the ULN, or the baseline when it is abnormal.
        "bilirubin": f"CASE WHEN {hi} IS NULL THEN NULL ELSE "
        f"{_above(v, f'(CASE WHEN {b} > {hi} THEN {b} ELSE {hi} END)', ('1.0', '1.5', '3.0', '10.0'))} END",  # noqa: E501
        "inr": _above(v, None, ("1.2", "1.5", "2.5", None)),
        # Count and electrolyte terms: grades 2-4 are absolute; without the LLN/ULN a value
        # short of the grade-2 cut (grade 0 or 1) is NULL, as the calculator refuses it.
        "platelets": _below_absolute(v, lo, ("75", "50", "25")),
        "neutrophils": _below_absolute(v, lo, ("1.5", "1.0", "0.5")),
        "wbc": _below_absolute(v, lo, ("3.0", "2.0", "1.0")),
        "hb": _below_absolute(v, lo, ("100", "80", None)),
        # Creatinine: max(grade by ULN, grade by baseline) [DC, RULES.md §7 notes].
        "creatinine": f"CASE WHEN {hi} IS NULL THEN NULL ELSE greatest("
        f"{_above(v, hi, ('1.0', '1.5', '3.0', '6.0'))}, "
        f"{_above(v, b, (None, '1.5', '3.0', None))}) END",
        "ica": _below_absolute(v, lo, ("1.0", "0.9", "0.8")),
        "sodium": _below_absolute(v, lo, ("130", "125", "120")),
        "potassium": f"CASE WHEN {hi} IS NULL AND {v} <= 5.5 THEN NULL ELSE "
        f"{_above(v, None, (hi, '5.5', '6.0', '7.0'))} END",
    }
    by_kind["ast"] = by_kind["alt"]
    arms = " ".join(f"WHEN '{name}' THEN ({expr})" for name, expr in by_kind.items())
    return f"(CASE {kind} {arms} ELSE NULL END)"


def meld_sql(bilirubin_umol: str, inr: str, creatinine_umol: str, dialysis: str) -> str:
    """SQL for the original MELD (OPTN integer, RULES.md §5.1) from SI inputs.

    Values below 1.0 are set to 1.0; creatinine is capped at 4.0 mg/dL, and set to 4.0 on
    dialysis; 10 × MELD(i) is rounded half up (DuckDB rounds half away from zero, the same for
    these positive values) and capped at 40.
    """
    bili = f"greatest(1.0, {bilirubin_umol} / 17.1)"
    creat = f"(CASE WHEN {dialysis} THEN 4.0 ELSE least(4.0, greatest(1.0, {creatinine_umol} / 88.4)) END)"  # noqa: E501
    score = f"0.957 * ln({creat}) + 0.378 * ln({bili}) + 1.120 * ln(greatest(1.0, {inr})) + 0.643"
    return f"CAST(least(40, round(10 * ({score}))) AS INTEGER)"
