"""CTCAE v5.0 grading of the laboratory terms of RULES.md §7 (rules core, pure calculator).

Source: NCI Common Terminology Criteria for Adverse Events v5.0 (27 Nov 2017), lab terms as
transcribed in pharmaverse/admiral `data-raw/adlb_grading/ncictcaev5.json`; semantics and
design choices [DC] from RULES.md §7: baseline abnormal = baseline > ULN; creatinine grade =
max(by ULN, by baseline); hyponatremia non-integers (125 ≤ Na < 130 is G2, 120 ≤ Na < 125
is G3); Anemia in g/L. Only lab-derived grades are computed: clinical qualifiers (anemia
G3–G4, hypocalcemia G2–G4) can only raise them and are the caller's to apply. The absolute
grades of the count and electrolyte terms (v5.0 writes only their grade 1 against the LLN or
ULN) are given without a reference range; see `_ctcae_terms`.

Each term grades values in the unit `term_unit` names; ratio terms (× ULN / × baseline)
take any unit, provided the value and its references share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from clinical.calculators import _ctcae_terms as _t
from clinical.calculators._ctcae_terms import Grader, GradingContext
from clinical.calculators._numbers import Numeric, exact, to_decimal
from clinical.calculators.errors import MissingInputError, UnknownTermError

_NO_CONTEXT: Final = GradingContext()


@dataclass(frozen=True, slots=True)
class _Term:
    grader: Grader
    unit: str  # canonical unit of the thresholds; "same as ULN" for ratio-only terms


_SAME: Final = "any (same unit as ULN/baseline)"
_TERMS: Final[Mapping[str, _Term]] = MappingProxyType(
    {
        "Alanine aminotransferase increased": _Term(_t.aminotransferase, _SAME),
        "Aspartate aminotransferase increased": _Term(_t.aminotransferase, _SAME),
        "Blood bilirubin increased": _Term(_t.bilirubin, _SAME),
        "INR increased": _Term(_t.inr, "1"),
        "Platelet count decreased": _Term(_t.decreased("75", "50", "25"), "10^9/L"),
        "Neutrophil count decreased": _Term(_t.decreased("1.5", "1.0", "0.5"), "10^9/L"),
        "White blood cell decreased": _Term(_t.decreased("3.0", "2.0", "1.0"), "10^9/L"),
        "Anemia": _Term(_t.decreased("100", "80", None), "g/L"),
        "Creatinine increased": _Term(_t.creatinine, _SAME),
        "Hypocalcemia": _Term(_t.decreased("2.0", "1.75", "1.5"), "mmol/L"),
        "Hypocalcemia (ionised)": _Term(_t.decreased("1.0", "0.9", "0.8"), "mmol/L"),
        "Hyponatremia": _Term(_t.hyponatremia, "mmol/L"),
        "Hyperkalemia": _Term(_t.hyperkalemia, "mmol/L"),
        "Fever": _Term(_t.fever, "Cel"),
    }
)


def supported_terms() -> tuple[str, ...]:
    """Return the CTCAE term names `grade` accepts, in RULES.md §7 order."""
    return tuple(_TERMS)


def _term(name: str) -> _Term:
    try:
        return _TERMS[name]
    except KeyError:
        supported = ", ".join(repr(term) for term in _TERMS)
        raise UnknownTermError(f"unknown CTCAE term {name!r}; supported: {supported}") from None


def term_unit(term: str) -> str:
    """Return the unit `grade` expects for `term` (UCUM-style; "1" for the unitless INR)."""
    return _term(term).unit


@exact
def grade(term: str, value: Numeric, context: GradingContext = _NO_CONTEXT) -> int:
    """Return the CTCAE v5.0 grade (0–4) of one lab value.

    Args:
        term: a name from `supported_terms()`, spelt exactly.
        value: the result, in `term_unit(term)`.
        context: the ULN/LLN/baseline and qualifiers the term needs.

    Raises:
        UnknownTermError: the term is not supported.
        MissingInputError: the grade depends on a reference the context lacks (for the
            count and electrolyte terms: only a value short of the absolute grade-2 cut).
        InvalidInputError: a value is not a finite number.

    """
    chosen = _term(term)
    try:
        return chosen.grader(to_decimal(value, name="value"), context)
    except MissingInputError as exc:
        raise MissingInputError(f"{term!r} needs {exc.field}", field=exc.field) from exc


__all__ = ["GradingContext", "grade", "supported_terms", "term_unit"]
