"""`safetymon calc`: MELD and CTCAE from "number unit" options, and clear usage errors."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from clinical.calculators import supported_terms
from safetymon.cli import app

runner = CliRunner()
USAGE_ERROR = 2
MELD_ARGS = ["calc", "meld", "--bilirubin", "8 mg/dL", "--inr", "1.8"]


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _flat(output: str) -> str:
    """The output without the error panel's box drawing and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def test_meld_from_mixed_units() -> None:
    """RULES.md §5.1 via the CLI: bilirubin 8 mg/dL, INR 1.8, Cr 459.68 µmol/L.

    Cr 459.68 / 88.4 = 5.2 mg/dL, capped at 4.0. MELD(i) = 0.957·ln 4 (1.326684)
    + 0.378·ln 8 (0.786029) + 1.120·ln 1.8 (0.658321) + 0.643 = 3.414034 → 3.4 → 34.
    """
    code, output = _run(*MELD_ARGS, "--creatinine", "459.68 umol/L")

    assert code == 0
    assert json.loads(output) == {"meld": 34}


def test_meld_na_and_meld_3_when_their_inputs_are_given() -> None:
    """MELD-Na with --sodium; MELD 3.0 with --sodium --albumin --sex (capped and uncapped).

    MELD-Na: Na 126 → 34 + 1.32·11 − 0.033·34·11 = 34 + 14.52 − 12.342 = 36.178 → 36.
    MELD 3.0 (F, B 8, INR 1.8, Cr capped 3.0, Na 126, Alb 3.0): 1.33 + 4.56·2.079442
    (9.482255) + 0.82·11 (9.02) − 0.24·11·2.079442 (5.489727) + 9.09·0.587787 (5.342984)
    + 11.14·1.098612 (12.238539) + 1.85·0.5 (0.925) − 1.83·0.5·1.098612 (1.005230) + 6
    = 37.843821 → 38.
    """
    code, output = _run(
        *MELD_ARGS,
        "--creatinine", "459.68 umol/L",
        "--sodium", "126 mmol/L",
        "--albumin", "30 g/L",
        "--sex", "f",
    )  # fmt: skip

    assert code == 0
    assert json.loads(output) == {"meld": 34, "meld_na": 36, "meld_3": 38, "meld_3_uncapped": 38}


def test_meld_from_si_matches_conventional_units() -> None:
    """RULES.md §5.2 M3 in SI: bilirubin 171 µmol/L, INR 2.0, Cr 132.6 µmol/L ⇒ 27."""
    code, output = _run(
        "calc", "meld", "--bilirubin", "171 µmol/L", "--inr", "2.0", "--creatinine", "132.6 umol/L"
    )

    assert code == 0
    assert json.loads(output) == {"meld": 27}


def test_dialysis_flag_sets_creatinine_to_four() -> None:
    """Dialysis ⇒ Cr 4.0: with Cr 1.0 mg/dL the score equals the Cr 4.0 score (34)."""
    code, output = _run(*MELD_ARGS, "--creatinine", "1.0 mg/dL", "--dialysis")

    assert code == 0
    assert json.loads(output) == {"meld": 34}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # 60 / 21 = 2.86 × ULN, baseline normal ⇒ > 1.5–3.0 × ULN ⇒ grade 2
        (["Blood bilirubin increased", "--value", "60 umol/L", "--uln", "21 umol/L"], 2),
        # same, ULN in mg/dL: 1.2 mg/dL = 20.52 µmol/L; 60 / 20.52 = 2.92 ⇒ grade 2
        (["Blood bilirubin increased", "--value", "60 umol/L", "--uln", "1.2 mg/dL"], 2),
        # RULES.md §7 L08 in SI: 205.2 µmol/L vs baseline 85.5 (> ULN) ⇒ 2.4 × BL ⇒ grade 2
        (
            [
                "Blood bilirubin increased",
                "--value",
                "12 mg/dL",
                "--uln",
                "20.52 umol/L",
                "--baseline",
                "85.5 umol/L",
            ],
            2,
        ),
        (["INR increased", "--value", "1.6"], 2),  # INR without a unit: > 1.5–2.5
        (["Anemia", "--value", "7.9 g/dL", "--lln", "120 g/L"], 3),  # L20: 79 g/L < 80
        (["Platelet count decreased", "--value", "48000 /mm3", "--lln", "125 10*9/L"], 3),  # L16
        (["Hyponatremia", "--value", "127 mEq/L", "--lln", "135 mmol/L", "--symptomatic"], 3),
        (["Platelet count decreased", "--value", "48000 /mm3"], 3),  # absolute: no LLN needed
        (["Fever", "--value", "104.18 [degF]", "--hours-above-40", "30"], 4),  # 40.1 °C > 24 h
    ],
)
def test_ctcae_grade(args: list[str], expected: int) -> None:
    """RULES.md §7 grades from "number unit" options converted to canonical SI."""
    code, output = _run("calc", "ctcae", *args)

    assert code == 0, output
    assert json.loads(output) == {"term": args[0], "grade": expected}


@pytest.mark.parametrize(
    ("args", "option"),
    [
        ([*MELD_ARGS, "--creatinine", "459.68 stones"], "--creatinine"),
        ([*MELD_ARGS, "--creatinine", "459.68 U/L"], "--creatinine"),
        ([*MELD_ARGS, "--creatinine", "459.68"], "--creatinine"),  # no unit: never guessed
        (["calc", "meld", "--bilirubin", "eight mg/dL", "--inr", "1.8", "--creatinine", "1 mg/dL"],
         "--bilirubin"),
        (["calc", "meld", "--bilirubin", "-8 mg/dL", "--inr", "1.8", "--creatinine", "1 mg/dL"],
         "--bilirubin"),
        ([*MELD_ARGS, "--creatinine", "1 mg/dL", "--sodium", "126 mg"], "--sodium"),
        ([*MELD_ARGS, "--creatinine", "1 mg/dL", "--albumin", "3 g/dL", "--sex", "F"], "--sodium"),
        (["calc", "ctcae", "Anemia", "--value", "7.9 mmol/mol", "--lln", "120 g/L"], "--value"),
        (["calc", "ctcae", "Anemia", "--value", "79 g/L", "--lln", "12 %"], "--lln"),
        # 80 x10^9/L is grade 0 or 1: only the LLN tells (48 would be grade 3 without it).
        (["calc", "ctcae", "Platelet count decreased", "--value", "80 10*9/L"], "--lln"),
    ],
)  # fmt: skip
def test_bad_quantity_is_a_usage_error_naming_the_option(args: list[str], option: str) -> None:
    """A bad unit, a malformed or missing quantity exits 2 and names the option at fault."""
    code, output = _run(*args)

    assert code == USAGE_ERROR
    assert option in _flat(output)


def test_unknown_ctcae_term_lists_the_supported_names() -> None:
    """An unknown term exits 2 and lists every supported term name."""
    code, output = _run("calc", "ctcae", "ALT increased", "--value", "100 U/L", "--uln", "40 U/L")

    assert code == USAGE_ERROR
    assert all(term in _flat(output) for term in supported_terms())


# One well-formed invocation per supported term: each term maps to an analyte and its units.
TERM_ARGS = {
    "Alanine aminotransferase increased": ["--value", "130 U/L", "--uln", "40 U/L"],
    "Aspartate aminotransferase increased": ["--value", "900 IU/L", "--uln", "40 U/L"],
    "Blood bilirubin increased": ["--value", "5 mg/dL", "--uln", "20.52 umol/L"],
    "INR increased": ["--value", "1.2"],
    "Platelet count decreased": ["--value", "75 10*9/L", "--lln", "125000 /uL"],
    "Neutrophil count decreased": ["--value", "0.9 10*9/L", "--lln", "1.8 10*9/L"],
    "White blood cell decreased": ["--value", "2.5 10*3/uL", "--lln", "4 10*9/L"],
    "Anemia": ["--value", "95 g/L", "--lln", "13 g/dL"],
    "Creatinine increased": ["--value", "2 mg/dL", "--uln", "97 umol/L"],
    "Hypocalcemia": ["--value", "8.016 mg/dL", "--lln", "2.1 mmol/L"],
    "Hypocalcemia (ionised)": ["--value", "1.05 mmol/L", "--lln", "1.12 mmol/L"],
    "Hyponatremia": ["--value", "122 mmol/L", "--lln", "135 mEq/L"],
    "Hyperkalemia": ["--value", "6.2 mmol/L", "--uln", "5.3 mmol/L"],
    "Fever": ["--value", "38.0 Cel"],
}
TERM_GRADES = {
    "Alanine aminotransferase increased": 2,  # L01: 3.25 × ULN
    "Aspartate aminotransferase increased": 4,  # L06: 22.5 × ULN
    "Blood bilirubin increased": 3,  # L07: 85.5 / 20.52 = 4.17 × ULN
    "INR increased": 0,  # L14
    "Platelet count decreased": 1,  # L15
    "Neutrophil count decreased": 3,  # L18
    "White blood cell decreased": 2,  # < 3.0 – 2.0
    "Anemia": 2,  # L20: 95 g/L, LLN 130 g/L
    "Creatinine increased": 2,  # 176.8 / 97 = 1.82 × ULN
    "Hypocalcemia": 1,  # 8.016 mg/dL = 2.0 mmol/L: < LLN – 2.0
    "Hypocalcemia (ionised)": 1,  # §4.5 PE-01 vector
    "Hyponatremia": 3,  # L25: 122
    "Hyperkalemia": 3,  # L26: 6.2
    "Fever": 1,  # §4.3 INF-01 vector: 38.0 °C
}


@pytest.mark.parametrize("term", supported_terms())
def test_every_supported_term_is_graded_from_the_command_line(term: str) -> None:
    """Each RULES.md §7 term maps to its LOINC analyte (§0.5) and converts its units."""
    code, output = _run("calc", "ctcae", term, *TERM_ARGS[term])

    assert code == 0, output
    assert json.loads(output) == {"term": term, "grade": TERM_GRADES[term]}
