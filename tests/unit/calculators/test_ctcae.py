"""CTCAE v5.0 lab grading: RULES.md §7 vectors L01–L26, boundaries, and grade properties."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinical.calculators import (
    GradingContext,
    MissingInputError,
    UnknownTermError,
    grade,
    supported_terms,
    term_unit,
)

ALT = "Alanine aminotransferase increased"
AST = "Aspartate aminotransferase increased"
BILIRUBIN = "Blood bilirubin increased"
INR = "INR increased"
PLATELETS = "Platelet count decreased"
NEUTROPHILS = "Neutrophil count decreased"
WBC = "White blood cell decreased"
ANEMIA = "Anemia"
CREATININE = "Creatinine increased"
HYPOCALCEMIA = "Hypocalcemia"
IONISED = "Hypocalcemia (ionised)"
HYPONATREMIA = "Hyponatremia"
HYPERKALEMIA = "Hyperkalemia"
FEVER = "Fever"
SHARED_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
Ctx = GradingContext

# RULES.md §7 grading test vectors (L20: Hb in g/L, the canonical unit; 10.0 g/dL = 100 g/L).
PUBLISHED = [
    ("L01", ALT, 130, Ctx(uln=40, baseline=35), 2),
    ("L02", ALT, 130, Ctx(uln=40, baseline=80), 1),
    ("L03", ALT, 100, Ctx(uln=40, baseline=80), 0),
    ("L06", AST, 900, Ctx(uln=40, baseline=30), 4),
    ("L07", BILIRUBIN, 5.0, Ctx(uln=1.2, baseline=1.0), 3),
    ("L08", BILIRUBIN, 12.0, Ctx(uln=1.2, baseline=5.0), 2),
    ("L10", BILIRUBIN, 4.8, Ctx(uln=1.2, baseline=5.0), 0),
    ("L14", INR, 1.2, Ctx(), 0),
    ("L15", PLATELETS, 75, Ctx(lln=125), 1),
    ("L16", PLATELETS, 48, Ctx(lln=125), 3),
    ("L18", NEUTROPHILS, 0.9, Ctx(lln=1.8), 3),
    ("L20a", ANEMIA, 100, Ctx(lln=120), 1),
    ("L20b", ANEMIA, 95, Ctx(lln=130), 2),
    ("L20c", ANEMIA, 79, Ctx(lln=120), 3),
    ("L25a", HYPONATREMIA, 130, Ctx(lln=135), 1),
    ("L25b", HYPONATREMIA, 127, Ctx(lln=135), 2),
    ("L25b-symptomatic", HYPONATREMIA, 127, Ctx(lln=135, symptomatic=True), 3),
    ("L25c", HYPONATREMIA, 122, Ctx(lln=135), 3),
    ("L25d", HYPONATREMIA, 119, Ctx(lln=135), 4),
    ("L26a", HYPERKALEMIA, 5.5, Ctx(uln=5.3), 1),
    ("L26b", HYPERKALEMIA, 6.2, Ctx(uln=5.3), 3),
    ("PE-01", IONISED, 1.05, Ctx(lln=1.12), 1),  # §4.5 vector: iCa 1.05, LLN 1.12 ⇒ G1
]


@pytest.mark.parametrize(
    ("term", "value", "context", "expected"),
    [vector[1:] for vector in PUBLISHED],
    ids=[vector[0] for vector in PUBLISHED],
)
def test_grade_matches_published_vector(
    term: str, value: float, context: GradingContext, expected: int
) -> None:
    """RULES.md §7: each published grading vector gets its published grade."""
    assert grade(term, value, context) == expected


def test_anemia_vectors_in_g_dl_are_graded_after_conversion() -> None:
    """RULES.md §7 L20: 10.0 g/dL / 7.9 g/dL are 100 g/L / 79 g/L (Anemia is graded in g/L)."""
    assert term_unit(ANEMIA) == "g/L"
    assert [grade(ANEMIA, g_dl * 10, Ctx(lln=120)) for g_dl in (10, Decimal("7.9"))] == [1, 3]


def test_supported_terms_are_the_rules_md_names() -> None:
    """RULES.md §7: the supported names, spelt exactly as the catalogue spells them."""
    assert supported_terms() == (
        ALT, AST, BILIRUBIN, INR, PLATELETS, NEUTROPHILS, WBC, ANEMIA,
        CREATININE, HYPOCALCEMIA, IONISED, HYPONATREMIA, HYPERKALEMIA, FEVER,
    )  # fmt: skip


def test_unknown_term_lists_the_supported_names() -> None:
    """An unknown term is refused with the list of supported names, never guessed."""
    with pytest.raises(UnknownTermError) as caught:
        grade("Alanine aminotransferase", 100, Ctx(uln=40))

    assert all(name in str(caught.value) for name in supported_terms())


@pytest.mark.parametrize(
    ("term", "context", "missing"),
    [
        (ALT, Ctx(), "uln"),
        (PLATELETS, Ctx(uln=400), "lln"),
        (ANEMIA, Ctx(), "lln"),
        (HYPONATREMIA, Ctx(), "lln"),
        (INR, Ctx(anticoagulated=True), "baseline"),
    ],
)
def test_missing_reference_is_refused(term: str, context: GradingContext, missing: str) -> None:
    """A term graded against a ULN, LLN or baseline needs it; no default is assumed."""
    with pytest.raises(MissingInputError, match=missing) as caught:
        grade(term, 1 if term in {ALT, INR} else 200, context)

    assert caught.value.field == missing


def test_float_and_decimal_inputs_grade_alike() -> None:
    """Floats are read as written: 3 × 40 is exactly 120, so 120.0 is still grade 1."""
    assert grade(ALT, 120.0, Ctx(uln=40.0)) == grade(ALT, Decimal(120), Ctx(uln=40)) == 1


# Boundaries: "> A – B" = A < x ≤ B; "< A – B" = B ≤ x < A; from grade 4 down.
BOUNDARIES = [
    # ALT/AST, baseline normal: > ULN, > 3, > 5, > 20 × ULN
    (ALT, "40", Ctx(uln=40), 0),
    (ALT, "40.01", Ctx(uln=40), 1),
    (ALT, "120", Ctx(uln=40), 1),
    (ALT, "120.01", Ctx(uln=40), 2),
    (ALT, "200", Ctx(uln=40), 2),
    (ALT, "800", Ctx(uln=40), 3),
    (ALT, "800.01", Ctx(uln=40), 4),
    (ALT, "60", Ctx(uln=40, baseline=40), 1),  # baseline = ULN is normal
    # ALT/AST, baseline abnormal: G1 from 1.5 × BL inclusive, then > 3, > 5, > 20 × BL
    (AST, "119.99", Ctx(uln=40, baseline=80), 0),
    (AST, "120", Ctx(uln=40, baseline=80), 1),
    (AST, "240", Ctx(uln=40, baseline=80), 1),
    (AST, "240.01", Ctx(uln=40, baseline=80), 2),
    (AST, "1600.01", Ctx(uln=40, baseline=80), 4),
    # Bilirubin, baseline abnormal: > 1.0, > 1.5, > 3.0, > 10.0 × BL
    (BILIRUBIN, "5.0", Ctx(uln=1.2, baseline=5.0), 0),
    (BILIRUBIN, "5.01", Ctx(uln=1.2, baseline=5.0), 1),
    (BILIRUBIN, "7.5", Ctx(uln=1.2, baseline=5.0), 1),
    (BILIRUBIN, "50.01", Ctx(uln=1.2, baseline=5.0), 4),
    # Bilirubin, baseline normal: > ULN, > 1.5, > 3.0, > 10.0 × ULN
    (BILIRUBIN, "1.2", Ctx(uln=1.2), 0),
    (BILIRUBIN, "1.8", Ctx(uln=1.2), 1),
    (BILIRUBIN, "3.6", Ctx(uln=1.2), 2),
    (BILIRUBIN, "12", Ctx(uln=1.2), 3),
    (BILIRUBIN, "12.01", Ctx(uln=1.2), 4),
    # INR: > 1.2, > 1.5, > 2.5; on anticoagulation × baseline
    (INR, "1.21", Ctx(), 1),
    (INR, "1.5", Ctx(), 1),
    (INR, "2.5", Ctx(), 2),
    (INR, "2.51", Ctx(), 3),
    (INR, "9", Ctx(), 3),  # no lab grade 4
    (INR, "2.0", Ctx(anticoagulated=True, baseline=2.0), 0),
    (INR, "3.0", Ctx(anticoagulated=True, baseline=2.0), 1),
    (INR, "5.0", Ctx(anticoagulated=True, baseline=2.0), 2),
    (INR, "5.01", Ctx(anticoagulated=True, baseline=2.0), 3),
    # Platelets (10^9/L): < LLN, < 75, < 50, < 25
    (PLATELETS, "125", Ctx(lln=125), 0),
    (PLATELETS, "74.9", Ctx(lln=125), 2),
    (PLATELETS, "50", Ctx(lln=125), 2),
    (PLATELETS, "25", Ctx(lln=125), 3),
    (PLATELETS, "24.9", Ctx(lln=125), 4),
    # Neutrophils (10^9/L): < LLN, < 1.5, < 1.0, < 0.5
    (NEUTROPHILS, "1.5", Ctx(lln=1.8), 1),
    (NEUTROPHILS, "1.0", Ctx(lln=1.8), 2),
    (NEUTROPHILS, "0.5", Ctx(lln=1.8), 3),
    (NEUTROPHILS, "0.49", Ctx(lln=1.8), 4),
    # WBC (10^9/L): < LLN, < 3.0, < 2.0, < 1.0
    (WBC, "4.0", Ctx(lln=4.0), 0),
    (WBC, "3.0", Ctx(lln=4.0), 1),
    (WBC, "2.0", Ctx(lln=4.0), 2),
    (WBC, "1.0", Ctx(lln=4.0), 3),
    (WBC, "0.99", Ctx(lln=4.0), 4),
    # Anemia (g/L): < LLN, < 100, < 80; grade 4 is clinical only
    (ANEMIA, "120", Ctx(lln=120), 0),
    (ANEMIA, "80", Ctx(lln=120), 2),
    (ANEMIA, "79.9", Ctx(lln=120), 3),
    (ANEMIA, "30", Ctx(lln=120), 3),
    # Creatinine: max(× ULN: > 1, > 1.5, > 3, > 6; × baseline: > 1.5, > 3)
    (CREATININE, "150", Ctx(uln=100), 1),
    (CREATININE, "150", Ctx(uln=100, baseline=90), 2),  # 1.67 × BL beats 1.5 × ULN
    (CREATININE, "270", Ctx(uln=100, baseline=90), 2),  # exactly 3.0 × BL
    (CREATININE, "270.1", Ctx(uln=100, baseline=90), 3),
    (CREATININE, "600", Ctx(uln=100, baseline=90), 3),
    (CREATININE, "600.1", Ctx(uln=100, baseline=90), 4),
    (CREATININE, "80", Ctx(uln=100, baseline=50), 2),  # literal max(): below ULN, 1.6 × BL
    # Hypocalcemia, corrected total (mmol/L): < LLN, < 2.0, < 1.75, < 1.5
    (HYPOCALCEMIA, "2.1", Ctx(lln=2.1), 0),
    (HYPOCALCEMIA, "2.0", Ctx(lln=2.1), 1),
    (HYPOCALCEMIA, "1.75", Ctx(lln=2.1), 2),
    (HYPOCALCEMIA, "1.5", Ctx(lln=2.1), 3),
    (HYPOCALCEMIA, "1.49", Ctx(lln=2.1), 4),
    # Hypocalcemia, ionised (mmol/L): < LLN, < 1.0, < 0.9, < 0.8
    (IONISED, "1.0", Ctx(lln=1.12), 1),
    (IONISED, "0.9", Ctx(lln=1.12), 2),
    (IONISED, "0.89", Ctx(lln=1.12), 3),
    (IONISED, "0.8", Ctx(lln=1.12), 3),
    (IONISED, "0.79", Ctx(lln=1.12), 4),
    # Hyponatremia non-integers: G2 125 ≤ Na < 130, G3 120 ≤ Na < 125, G4 < 120
    (HYPONATREMIA, "135", Ctx(lln=135), 0),
    (HYPONATREMIA, "129.5", Ctx(lln=135), 2),
    (HYPONATREMIA, "125", Ctx(lln=135), 2),
    (HYPONATREMIA, "124.9", Ctx(lln=135), 3),
    (HYPONATREMIA, "120", Ctx(lln=135), 3),
    (HYPONATREMIA, "119.9", Ctx(lln=135), 4),
    (HYPONATREMIA, "131", Ctx(lln=135, symptomatic=True), 1),  # symptoms only lift 125–129
    # Hyperkalemia (mmol/L): > ULN, > 5.5, > 6.0, > 7.0
    (HYPERKALEMIA, "5.3", Ctx(uln=5.3), 0),
    (HYPERKALEMIA, "6.0", Ctx(uln=5.3), 2),
    (HYPERKALEMIA, "7.0", Ctx(uln=5.3), 3),
    (HYPERKALEMIA, "7.01", Ctx(uln=5.3), 4),
    # Fever (°C): 38.0–39.0, > 39.0–40.0, > 40.0 for ≤ 24 h, > 40.0 for > 24 h
    (FEVER, "37.9", Ctx(), 0),
    (FEVER, "38.0", Ctx(), 1),
    (FEVER, "39.0", Ctx(), 1),
    (FEVER, "39.01", Ctx(), 2),
    (FEVER, "40.0", Ctx(), 2),
    (FEVER, "40.1", Ctx(), 3),
    (FEVER, "40.1", Ctx(hours_above_40=24), 3),
    (FEVER, "40.1", Ctx(hours_above_40=24.5), 4),
]


@pytest.mark.parametrize(("term", "value", "context", "expected"), BOUNDARIES)
def test_grade_at_threshold(term: str, value: str, context: GradingContext, expected: int) -> None:
    """RULES.md §7 semantics: each grade boundary falls on the side the notation puts it."""
    assert grade(term, Decimal(value), context) == expected


INCREASED = {
    ALT: Ctx(uln=40, baseline=60),
    AST: Ctx(uln=40),
    BILIRUBIN: Ctx(uln=21, baseline=85),
    INR: Ctx(),
    CREATININE: Ctx(uln=97, baseline=70),
    HYPERKALEMIA: Ctx(uln=5.3),
    FEVER: Ctx(hours_above_40=30),
}
DECREASED = {
    PLATELETS: Ctx(lln=125),
    NEUTROPHILS: Ctx(lln=1.8),
    WBC: Ctx(lln=3.5),
    ANEMIA: Ctx(lln=115),
    HYPOCALCEMIA: Ctx(lln=2.1),
    IONISED: Ctx(lln=1.12),
    HYPONATREMIA: Ctx(lln=135, symptomatic=True),
}
values = st.decimals(min_value=0, max_value=2000, places=2)


@pytest.mark.slow
@given(term=st.sampled_from(supported_terms()), value=values)
def test_grade_is_zero_to_four(term: str, value: Decimal) -> None:
    """Every lab-derived grade lies in 0..4 (grade 5, death, is never lab-derived)."""
    context = INCREASED.get(term) or DECREASED[term]

    assert grade(term, value, context) in range(5)


@pytest.mark.slow
@given(term=st.sampled_from(sorted(INCREASED)), value=values, rise=values)
def test_higher_value_never_grades_lower_for_increased_terms(
    term: str, value: Decimal, rise: Decimal
) -> None:
    """For an "increased" term a worse (higher) value never gets a lower grade."""
    context = INCREASED[term]

    assert grade(term, value + rise, context) >= grade(term, value, context)


@pytest.mark.slow
@given(term=st.sampled_from(sorted(DECREASED)), value=values, fall=values)
def test_lower_value_never_grades_lower_for_decreased_terms(
    term: str, value: Decimal, fall: Decimal
) -> None:
    """For a "decreased" term a worse (lower) value never gets a lower grade."""
    context = DECREASED[term]

    assert grade(term, max(value - fall, Decimal(0)), context) >= grade(term, value, context)


# CTCAE v5.0 grades 2-4 of the count and electrolyte terms are absolute (RULES.md §7 table):
# graded without a reference range; a value short of the grade-2 cut still needs the limit.
ABSOLUTE = [
    (PLATELETS, "74.9", 2),
    (PLATELETS, "49", 3),
    (PLATELETS, "24.9", 4),
    (NEUTROPHILS, "1.49", 2),
    (NEUTROPHILS, "0.99", 3),
    (NEUTROPHILS, "0.4", 4),
    (WBC, "2.9", 2),
    (WBC, "1.9", 3),
    (WBC, "0.9", 4),
    (ANEMIA, "99", 2),
    (ANEMIA, "79", 3),
    (IONISED, "0.95", 2),
    (IONISED, "0.85", 3),
    (IONISED, "0.75", 4),
    (HYPONATREMIA, "129", 2),
    (HYPONATREMIA, "124", 3),
    (HYPONATREMIA, "119", 4),
    (HYPERKALEMIA, "5.6", 2),
    (HYPERKALEMIA, "6.1", 3),
    (HYPERKALEMIA, "7.1", 4),
    (INR, "1.6", 2),
    (FEVER, "40.1", 3),
]


@pytest.mark.parametrize(("term", "value", "expected"), ABSOLUTE)
def test_absolute_grades_need_no_reference_range(term: str, value: str, expected: int) -> None:
    """Hand-worked: platelets 24.9 x10^9/L is grade 4 whatever the lab's LLN."""
    assert grade(term, Decimal(value), Ctx()) == expected


@pytest.mark.parametrize(
    ("term", "value", "missing"),
    [
        (PLATELETS, "75", "lln"),  # on the grade-2 cut: grade 1 (LLN above 75) or 0
        (NEUTROPHILS, "1.5", "lln"),
        (WBC, "3.0", "lln"),
        (ANEMIA, "100", "lln"),
        (IONISED, "1.0", "lln"),
        (HYPONATREMIA, "130", "lln"),
        (HYPERKALEMIA, "5.5", "uln"),
    ],
)
def test_grade_zero_or_one_still_needs_the_limit(term: str, value: str, missing: str) -> None:
    """A value short of the absolute grade-2 cut is grade 0 or 1: only the limit decides."""
    with pytest.raises(MissingInputError) as caught:
        grade(term, Decimal(value), Ctx())

    assert caught.value.field == missing


def test_pbc_platelets_graded_without_reference_range() -> None:
    """Real data: the Mayo PBC trial's platelet counts (x10^9/L) carry no reference range.

    Row 266 (participant 36, day 2414) is 40 -> grade 3; row 523 (participant 66, day 238)
    is 68 -> grade 2; every count under 75 is graded, every other one is refused.
    """
    path = SHARED_DATA / "liver" / "pbcseq_rdatasets.csv"
    with path.open(encoding="utf-8") as handle:
        rows = {row["rownames"]: row for row in csv.DictReader(handle) if row["platelet"]}
    graded: dict[str, int] = {}
    refused = 0
    for name, row in rows.items():
        try:
            graded[name] = grade(PLATELETS, float(row["platelet"]), Ctx())
        except MissingInputError:
            refused += 1

    assert (graded["266"], graded["523"]) == (3, 2)
    assert len(graded) == sum(float(r["platelet"]) < 75 for r in rows.values())
    assert refused == len(rows) - len(graded) > 1000
