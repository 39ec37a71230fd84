"""LAB-G3 / LAB-G4: CTCAE v5.0 lab grades via calculators.ctcae (RULES.md §7)."""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas import LabResultRecorded, Role, Urgency
from services.rules.core.fold import replay

from .factories import T0, enrolled, envelope, hours_after, unique

ENROLLED = T0 - timedelta(days=1)
BEFORE = ENROLLED - timedelta(hours=6)
INV_SO = (Role.INVESTIGATOR, Role.SAFETY_OFFICER)
CODES = {
    "alt": ("1742-6", "U/L"),
    "ast": ("1920-8", "U/L"),
    "bilirubin": ("14631-6", "umol/L"),
    "creatinine": ("14682-9", "umol/L"),
    "inr": ("6301-6", "{INR}"),
    "platelets": ("777-3", "10*9/L"),
    "neutrophils": ("751-8", "10*9/L"),
    "wbc": ("6690-2", "10*9/L"),
    "hb": ("718-7", "g/L"),
    "ica": ("1994-3", "mmol/L"),
    "sodium": ("2951-2", "mmol/L"),
    "potassium": ("2823-3", "mmol/L"),
}


def lab(
    pid: str,
    kind: str,
    value: float,
    at: datetime = T0,
    *,
    low: float | None = None,
    high: float | None = None,
) -> LabResultRecorded:
    """A result already normalised by ingest, with its normalised reference range."""
    loinc, unit = CODES[kind]
    payload = {
        "loinc": loinc,
        "result": {
            "value": value,
            "unit": unit,
            "normalised_value": value,
            "normalised_unit": unit,
        },
        "normalised_reference_low": low,
        "normalised_reference_high": high,
        "reference_low": low,
        "reference_high": high,
    }
    return LabResultRecorded(**envelope(pid, at=at), payload=payload)


def grades(facts: list) -> list[tuple[str, str, int]]:
    _, signals = replay(facts)
    return [
        (s.payload.rule_id, str(s.payload.values["term"]), int(s.payload.values["ctcae_grade"]))
        for s in signals
        if s.payload.rule_id in {"LAB-G3", "LAB-G4"}
    ]


def run(pid: str, *labs: LabResultRecorded) -> list[tuple[str, str, int]]:
    return grades([enrolled(pid, at=ENROLLED), *labs])


def test_l16_platelets_48_is_new_grade_3_u1_to_investigator() -> None:
    """RULES.md L16: platelets 48 x10^9/L (LLN 125) is grade 3 -> LAB-G3, U1 to INV."""
    pid = unique("P")

    _, signals = replay([enrolled(pid, at=ENROLLED), lab(pid, "platelets", 48, low=125)])
    (signal,) = [s for s in signals if s.payload.rule_id == "LAB-G3"]

    assert signal.payload.values["term"] == "Platelet count decreased"
    assert (signal.payload.urgency, signal.payload.recipients) == (Urgency.U1, (Role.INVESTIGATOR,))


def test_l15_platelets_75_is_grade_1_and_silent() -> None:
    """RULES.md L15 / boundary: platelets 75 is grade 1 (< LLN - 75); 49.9 is grade 3."""
    pid, pid2 = unique("P"), unique("P")

    assert run(pid, lab(pid, "platelets", 75, low=125)) == []
    assert run(pid2, lab(pid2, "platelets", 49.9, low=125)) == [
        ("LAB-G3", "Platelet count decreased", 3)
    ]


def test_l06_ast_22_5_x_uln_is_grade_4_u0() -> None:
    """RULES.md L06: AST 900 (ULN 40, baseline 30) is grade 4 -> LAB-G4, U0 to INV and SO."""
    pid = unique("P")
    facts = [
        lab(pid, "ast", 30, BEFORE, high=40),
        enrolled(pid, at=ENROLLED),
        lab(pid, "ast", 900, high=40),
    ]

    _, signals = replay(facts)
    (signal,) = [s for s in signals if s.payload.rule_id == "LAB-G4"]

    assert (signal.payload.urgency, signal.payload.recipients) == (Urgency.U0, INV_SO)
    assert (signal.payload.values["baseline_value"], signal.payload.values["baseline_grade"]) == (
        30,
        0,
    )


def test_l07_bilirubin_4_17_x_uln_with_normal_baseline_is_grade_3() -> None:
    """RULES.md L07 in SI: 85.5 µmol/L (ULN 20.52, baseline 17.1) is grade 3."""
    pid = unique("P")
    facts = [
        lab(pid, "bilirubin", 17.1, BEFORE, high=20.52),
        enrolled(pid, at=ENROLLED),
        lab(pid, "bilirubin", 85.5, high=20.52),
    ]

    assert grades(facts) == [("LAB-G3", "Blood bilirubin increased", 3)]


def test_l08_bilirubin_graded_against_an_abnormal_baseline() -> None:
    """RULES.md L08 in SI: 205.2 µmol/L with baseline 85.5 (abnormal) is 2.4 x BL, grade 2."""
    pid = unique("P")
    facts = [
        lab(pid, "bilirubin", 85.5, BEFORE, high=20.52),
        enrolled(pid, at=ENROLLED),
        lab(pid, "bilirubin", 205.2, high=20.52),
    ]

    assert grades(facts) == []


def test_l18_neutrophils_and_l25_l26_electrolytes() -> None:
    """L18 neutrophils 0.9 (G3); L25 sodium 119 (G4); L26 potassium 6.2 (ULN 5.3, G3)."""
    pid = unique("P")

    found = run(
        pid,
        lab(pid, "neutrophils", 0.9, low=1.8),
        lab(pid, "sodium", 119, hours_after(1), low=135),
        lab(pid, "potassium", 6.2, hours_after(2), high=5.3),
    )

    assert found == [
        ("LAB-G3", "Neutrophil count decreased", 3),
        ("LAB-G4", "Hyponatremia", 4),
        ("LAB-G3", "Hyperkalemia", 3),
    ]


def test_l20_anemia_in_g_l_and_ionised_calcium() -> None:
    """L20: Hb 79 g/L (< 80) is Anemia grade 3; ionised calcium 0.79 mmol/L is grade 4."""
    pid = unique("P")

    found = run(pid, lab(pid, "hb", 79, low=130), lab(pid, "ica", 0.79, hours_after(1), low=1.12))

    assert found == [("LAB-G3", "Anemia", 3), ("LAB-G4", "Hypocalcemia (ionised)", 4)]


def test_inr_needs_no_reference_range_and_creatinine_uses_the_baseline() -> None:
    """INR > 2.5 is grade 3 on fixed cuts; creatinine > 3 x baseline is grade 3 (§7 notes)."""
    pid = unique("P")
    facts = [
        lab(pid, "creatinine", 60, BEFORE, high=110),
        enrolled(pid, at=ENROLLED),
        lab(pid, "inr", 2.6),
        lab(pid, "creatinine", 190, hours_after(1), high=110),
    ]

    assert grades(facts) == [
        ("LAB-G3", "INR increased", 3),
        ("LAB-G3", "Creatinine increased", 3),
    ]


def test_grade_3_present_at_baseline_is_not_new_but_grade_4_still_fires() -> None:
    """LAB-G3 needs a grade not present at baseline; LAB-G4 fires on any grade 4."""
    pid = unique("P")
    facts = [
        lab(pid, "platelets", 40, BEFORE, low=125),
        enrolled(pid, at=ENROLLED),
        lab(pid, "platelets", 45, low=125),
        lab(pid, "platelets", 20, hours_after(6), low=125),
    ]

    assert grades(facts) == [("LAB-G4", "Platelet count decreased", 4)]


def test_once_per_term_and_grade_episode() -> None:
    """RULES.md §0.2: a persisting grade 3 stays one episode; after 72 h quiet it fires again."""
    pid = unique("P")

    found = run(
        pid,
        lab(pid, "platelets", 48, low=125),
        lab(pid, "platelets", 45, hours_after(24), low=125),
        lab(pid, "platelets", 30, hours_after(48), low=125),
        lab(pid, "platelets", 40, hours_after(48 + 73), low=125),
    )

    assert found == [("LAB-G3", "Platelet count decreased", 3)] * 2


def test_result_before_randomisation_or_only_gradable_by_its_limit_is_not_graded() -> None:
    """Before randomisation nothing is graded; without the limit, neither is a grade 0/1 or ×ULN.

    Platelets 80 x10^9/L without an LLN could be grade 0 or 1 (CTCAE v5.0 grade 1 is
    "< LLN - 75"); ALT 2000 U/L without a ULN has no grade at all (every grade is ×ULN).
    """
    pid = unique("P")
    facts = [
        lab(pid, "platelets", 20, BEFORE, low=125),
        enrolled(pid, at=ENROLLED),
        lab(pid, "platelets", 80),
        lab(pid, "alt", 2000),
        lab(pid, "sodium", 131),
        lab(pid, "potassium", 5.4),
    ]

    assert grades(facts) == []


def test_absolute_ctcae_grades_need_no_reference_range() -> None:
    """Hand-worked CTCAE v5.0 absolute grades on results sent without a reference range.

    Platelets 20 x10^9/L (< 25) grade 4; neutrophils 0.4 (< 0.5) grade 4; sodium 119 mmol/L
    (< 120) grade 4; potassium 7.2 (> 7.0) grade 4; Hb 75 g/L (< 80) grade 3; WBC 1.5
    (< 2.0) grade 3. Each signal says the range was missing.
    """
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        lab(pid, "platelets", 20),
        lab(pid, "neutrophils", 0.4, hours_after(1)),
        lab(pid, "sodium", 119, hours_after(2)),
        lab(pid, "potassium", 7.2, hours_after(3)),
        lab(pid, "hb", 75, hours_after(4)),
        lab(pid, "wbc", 1.5, hours_after(5)),
    ]

    _, signals = replay(facts)
    paged = [s for s in signals if s.payload.rule_id in {"LAB-G3", "LAB-G4"}]

    assert [(s.payload.rule_id, s.payload.values["term"]) for s in paged] == [
        ("LAB-G4", "Platelet count decreased"),
        ("LAB-G4", "Neutrophil count decreased"),
        ("LAB-G4", "Hyponatremia"),
        ("LAB-G4", "Hyperkalemia"),
        ("LAB-G3", "Anemia"),
        ("LAB-G3", "White blood cell decreased"),
    ]
    assert all(s.payload.values["reference_range_missing"] is True for s in paged)
    assert all(s.payload.values["lln"] is None for s in paged)
    assert "no reference range" in paged[0].payload.reason


def test_graded_with_its_range_says_nothing_of_a_missing_range() -> None:
    """A result that carries its LLN is graded as before, without the missing-range flag."""
    pid = unique("P")

    _, signals = replay([enrolled(pid, at=ENROLLED), lab(pid, "platelets", 20, low=125)])
    (signal,) = [s for s in signals if s.payload.rule_id == "LAB-G4"]

    assert "reference_range_missing" not in signal.payload.values
    assert signal.payload.values["ctcae_grade"] == 4


def test_baseline_without_its_own_range_is_graded_with_the_results_range() -> None:
    """A baseline sent without a range is graded with the new result's range (G3 -> G3: silent)."""
    pid = unique("P")
    facts = [
        lab(pid, "platelets", 45, BEFORE),
        enrolled(pid, at=ENROLLED),
        lab(pid, "platelets", 40, low=125),
    ]

    assert grades(facts) == []
