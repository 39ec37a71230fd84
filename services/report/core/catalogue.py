"""Lab kinds the report grades (core layer).

The AE classifications, AESI categories and body systems are `clinical`'s (the rules fire on
the same definitions); the lab kinds follow `clinical.codes` (tests/unit/report/
test_catalogue.py checks they agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class LabKind:
    """A graded laboratory analyte: its LOINC codes and CTCAE v5.0 term (RULES.md §7)."""

    kind: str
    term: str
    loincs: tuple[str, ...]


#: RULES.md §0.5 codes; canonical units are those ingest normalises to (§0.4).
LAB_KINDS: Final = (
    LabKind("alt", "Alanine aminotransferase increased", ("1742-6",)),
    LabKind("ast", "Aspartate aminotransferase increased", ("1920-8",)),
    LabKind("bilirubin", "Blood bilirubin increased", ("1975-2", "14631-6")),
    LabKind("inr", "INR increased", ("6301-6",)),
    LabKind("platelets", "Platelet count decreased", ("777-3",)),
    LabKind("neutrophils", "Neutrophil count decreased", ("751-8",)),
    LabKind("wbc", "White blood cell decreased", ("6690-2",)),
    LabKind("hb", "Anemia", ("718-7",)),
    LabKind("creatinine", "Creatinine increased", ("2160-0", "14682-9")),
    LabKind("ica", "Hypocalcemia (ionised)", ("1994-3", "1995-0")),
    LabKind("sodium", "Hyponatremia", ("2951-2",)),
    LabKind("potassium", "Hyperkalemia", ("2823-3",)),
)
BLOOD_CULTURE_LOINC: Final = "600-7"
