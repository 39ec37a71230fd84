"""The report's set-based CTCAE and MELD SQL agrees with RULES.md and the rules' calculators."""

from __future__ import annotations

import random
from collections.abc import Iterator

import duckdb
import pytest

from clinical.calculators import GradingContext, MeldLabs, MissingInputError, grade, meld
from clinical.labs import SYSTEMIC_SPECIMENS, lab_kind
from services.report.adapters.grading_sql import grade_sql, meld_sql
from services.report.core.catalogue import LAB_KINDS

TERMS = {k.kind: k.term for k in LAB_KINDS}
BASELINE_RELATIVE = {"alt", "ast", "bilirubin", "creatinine"}


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(":memory:")
    yield connection
    connection.close()


def _grades(
    con: duckdb.DuckDBPyConnection,
    cases: list[tuple[str, float, float | None, float | None, float | None]],
) -> list[int | None]:
    expression = grade_sql("kind", "value", "low", "high", "baseline")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE cases (i INTEGER, kind VARCHAR, value DOUBLE, low DOUBLE,"
        " high DOUBLE, baseline DOUBLE)"
    )
    con.executemany(
        "INSERT INTO cases VALUES (?, ?, ?, ?, ?, ?)",
        [(i, *case) for i, case in enumerate(cases)],
    )
    return [row[0] for row in con.execute(f"SELECT {expression} FROM cases ORDER BY i").fetchall()]


# RULES.md §7 grading vectors, in canonical SI units (bilirubin mg/dL x 17.1, Hb g/L).
VECTORS = [
    ("L01", ("alt", 130, None, 40, 35), 2),
    ("L02", ("alt", 130, None, 40, 80), 1),
    ("L03", ("alt", 100, None, 40, 80), 0),
    ("L06", ("ast", 900, None, 40, 30), 4),
    ("L07", ("bilirubin", 85.5, None, 20.52, 17.1), 3),
    ("L08", ("bilirubin", 205.2, None, 20.52, 85.5), 2),
    ("L10", ("bilirubin", 82.08, None, 20.52, 85.5), 0),
    ("L14", ("inr", 1.2, None, None, None), 0),
    ("L15", ("platelets", 75, 125, None, None), 1),
    ("L16", ("platelets", 48, 125, None, None), 3),
    ("L18", ("neutrophils", 0.9, 1.8, None, None), 3),
    ("L20a", ("hb", 100, 120, None, None), 1),
    ("L20b", ("hb", 95, 130, None, None), 2),
    ("L20c", ("hb", 79, 120, None, None), 3),
    ("L25a", ("sodium", 130, 135, None, None), 1),
    ("L25b", ("sodium", 127, 135, None, None), 2),
    ("L25c", ("sodium", 122, 135, None, None), 3),
    ("L25d", ("sodium", 119, 135, None, None), 4),
    ("L26a", ("potassium", 5.5, None, 5.3, None), 1),
    ("L26b", ("potassium", 6.2, None, 5.3, None), 3),
    ("ALT inclusive 1.5", ("alt", 120, None, 40, 80), 1),
    ("missing ULN", ("alt", 120, None, None, 80), None),
    ("missing LLN, grade 0 or 1", ("platelets", 80, None, None, None), None),
    # CTCAE v5.0 absolute grades need no reference range.
    ("no LLN: platelets < 25", ("platelets", 20, None, None, None), 4),
    ("no LLN: platelets on 75", ("platelets", 75, None, None, None), None),
    ("no LLN: platelets < 75", ("platelets", 74.9, None, None, None), 2),
    ("no LLN: neutrophils < 0.5", ("neutrophils", 0.4, None, None, None), 4),
    ("no LLN: WBC < 3.0", ("wbc", 2.5, None, None, None), 2),
    ("no LLN: Hb < 80 g/L", ("hb", 79, None, None, None), 3),
    ("no LLN: Hb 100 g/L", ("hb", 100, None, None, None), None),
    ("no LLN: sodium < 120", ("sodium", 119, None, None, None), 4),
    ("no LLN: sodium 130", ("sodium", 130, None, None, None), None),
    ("no LLN: iCa < 0.8", ("ica", 0.75, None, None, None), 4),
    ("no ULN: potassium 6.2", ("potassium", 6.2, None, None, None), 3),
    ("no ULN: potassium 5.5", ("potassium", 5.5, None, None, None), None),
    ("no ULN: creatinine", ("creatinine", 900, None, None, 80), None),
]


def test_rules_md_grading_vectors(con: duckdb.DuckDBPyConnection) -> None:
    """Every CTCAE v5.0 vector of RULES.md §7 grades as published."""
    found = _grades(con, [case for _, case, _ in VECTORS])

    assert dict(zip([name for name, _, _ in VECTORS], found, strict=True)) == {
        name: expected for name, _, expected in VECTORS
    }


def _random_cases(
    seed: int, n: int
) -> list[tuple[str, float, float | None, float | None, float | None]]:
    rng = random.Random(seed)
    limits = {
        "alt": (None, 40.0), "ast": (None, 40.0), "bilirubin": (None, 20.52), "inr": (None, None),
        "platelets": (125.0, None), "neutrophils": (1.8, None), "wbc": (4.0, None),
        "hb": (120.0, None), "creatinine": (None, 97.0), "ica": (1.12, None),
        "sodium": (135.0, None), "potassium": (None, 5.3),
    }  # fmt: skip
    cases = []
    for _ in range(n):
        kind = rng.choice(sorted(limits))
        low, high = limits[kind]
        reference = high or low or 1.2
        value = round(rng.uniform(0, 25) * reference / rng.choice((1, 2, 4, 8)), 2)
        baseline = (
            round(rng.uniform(0.3, 6) * reference, 2)
            if kind in BASELINE_RELATIVE and rng.random() < 0.7
            else None
        )
        if rng.random() < 0.25:  # a result sent without its reference range
            low = high = None
        cases.append((kind, value, low, high, baseline))
    # Values exactly on the boundaries: the cases binary floats get wrong.
    cases += [("alt", 120.0, None, 40.0, None), ("alt", 60.0, None, 40.0, 40.0),
              ("bilirubin", 30.78, None, 20.52, None), ("creatinine", 145.5, None, 97.0, None),
              ("inr", 1.5, None, None, None), ("sodium", 125.0, 135.0, None, None),
              ("sodium", 130.0, None, None, None), ("potassium", 5.5, None, None, None),
              ("platelets", 75.0, None, None, None), ("hb", 80.0, None, None, None)]  # fmt: skip
    return cases


def _calculator(term: str, value: float, context: GradingContext) -> int | None:
    """The calculator's grade, None where it refuses for want of a reference limit."""
    try:
        return grade(term, value, context)
    except MissingInputError:
        return None


@pytest.mark.slow
def test_sql_grades_equal_the_rules_calculator(con: duckdb.DuckDBPyConnection) -> None:
    """2,000 random results (a quarter without range) and boundaries grade as calculators.ctcae."""
    cases = _random_cases(seed=6, n=2000)

    found = _grades(con, cases)

    expected = [
        _calculator(TERMS[kind], value, GradingContext(uln=high, lln=low, baseline=baseline))
        for kind, value, low, high, baseline in cases
    ]
    mismatches = [(c, f, e) for c, f, e in zip(cases, found, expected, strict=True) if f != e]
    assert mismatches == []


MELD_VECTORS = [
    # RULES.md §5.2: bilirubin µmol/L, INR, creatinine µmol/L, dialysis -> OPTN MELD.
    ("M1", 10.26, 0.9, 61.88, False, 6),
    ("M2", 85.5, 1.6, 88.4, False, 18),
    ("M3", 171.0, 2.0, 132.6, False, 27),
    ("M7", 342.0, 0.95, 53.04, False, 18),
    ("M8", 256.5, 2.2, 70.72, False, 25),
    ("M12", 34.2, 1.2, 88.4, False, 11),
    ("M13", 34.2, 1.3, 88.4, False, 12),
    ("dialysis", 85.5, 1.6, 88.4, True, 31),
    ("cap 40", 1000.0, 9.0, 900.0, False, 40),
]


def test_meld_vectors(con: duckdb.DuckDBPyConnection) -> None:
    """The OPTN MELD of RULES.md §5.2, and the calculator's value for the same inputs."""
    expression = meld_sql("b", "i", "c", "d")
    rows = [(b, i, c, d) for _, b, i, c, d, _ in MELD_VECTORS]

    sql = f"SELECT {expression} FROM (SELECT ? b, ? i, ? c, ? d)"
    found = [con.execute(sql, list(row)).fetchall()[0][0] for row in rows]

    assert found == [expected for *_, expected in MELD_VECTORS]
    assert found == [
        meld(MeldLabs(bilirubin=b / 17.1, inr=i, creatinine=c / 88.4, dialysis=d))
        for b, i, c, d in rows
    ]


def test_report_lab_kinds_are_the_specimen_aware_rules_kinds() -> None:
    """Each LOINC the report grades is that kind on serum, plasma and blood, on nothing else."""
    for kind in LAB_KINDS:
        for loinc in kind.loincs:
            assert [lab_kind(loinc, s) for s in SYSTEMIC_SPECIMENS] == [kind.kind] * 3, loinc
            assert lab_kind(loinc, "urine") is lab_kind(loinc, "other") is None, loinc
            if kind.kind != "neutrophils":  # 751-8 on ascitic fluid is the ascitic PMN count
                assert lab_kind(loinc, "ascitic_fluid") is None, loinc
