"""Laboratory kinds keyed by analyte AND specimen: which result is which clinical observation.

LOINC codes are RULES.md §0.5; the canonical units are those ingest normalises to (§0.4).
A LOINC code names an analyte, but a site may send it on another specimen (an ascitic-fluid
cell count under the blood WBC code 6690-2, a urine sodium under 2951-2): the specimen
decides what the value means, so a kind is looked up by both.

Which specimens count, decided clinically [DC]:
- every systemic kind (blood counts, chemistry, coagulation, blood culture) is read only from
  serum, plasma or (whole) blood: the three are one circulating compartment and the analyser
  reports the same analyte in the same unit (Hb, counts and INR come from whole blood, most
  chemistry from serum or plasma; ionised calcium 1994-3 / 1995-0 from either);
- ascitic fluid gives only the ascitic PMN count (neutrophils 751-8 on ascitic fluid, RULES.md
  §0.5: no LOINC found), the SBP criterion (INF-04). An ascitic WBC is not a blood WBC: no
  SIRS criterion, no CTCAE "White blood cell decreased" grade;
- urine never gives a blood kind (urine sodium or creatinine are not serum values: no CTCAE
  grade, no AKI stage, no MELD-Na); "other" is an unknown specimen and gives nothing: an
  unknown fluid is not guessed to be blood.

`LAB_KIND_TABLE` is the one table: the rules look kinds up in it (`lab_kind`) and the DSMB
report's SQL is generated from its rows (`lab_kind_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: Specimens of the wire contract (`LabResultRecordedPayload.specimen`) read as systemic.
SYSTEMIC_SPECIMENS: Final = ("serum", "plasma", "blood")
ASCITIC_FLUID: Final = "ascitic_fluid"


@dataclass(frozen=True, slots=True)
class LabKind:
    """One row of the table: a (LOINC, specimen) pair, its kind and canonical unit."""

    loinc: str
    specimen: str
    kind: str
    unit: str


#: Systemic analytes: LOINC -> (kind, canonical unit), read from `SYSTEMIC_SPECIMENS` only.
_SYSTEMIC: Final[dict[str, tuple[str, str]]] = {
    "718-7": ("hb", "g/L"),
    "6690-2": ("wbc", "10*9/L"),
    "777-3": ("platelets", "10*9/L"),
    "6301-6": ("inr", "{INR}"),
    "16362-6": ("ammonia", "umol/L"),
    "22763-7": ("ammonia", "umol/L"),
    "2951-2": ("sodium", "mmol/L"),
    "2823-3": ("potassium", "mmol/L"),
    "1994-3": ("ica", "mmol/L"),
    "1995-0": ("ica", "mmol/L"),
    "33959-8": ("pct", "ng/mL"),
    "75241-0": ("pct", "ng/mL"),
    "1988-5": ("crp", "mg/L"),
    "2524-7": ("lactate", "mmol/L"),
    # Blood culture: "Bacteria identified in Blood by Culture"; growth is a flag (1 / 0).
    "600-7": ("culture", "1"),
    # RULES.md §5-§7 (MELD, CLIF-C OF, KDIGO, CTCAE): both bilirubin and both creatinine
    # codes normalise to µmol/L at ingest.
    "1975-2": ("bilirubin", "umol/L"),
    "14631-6": ("bilirubin", "umol/L"),
    "2160-0": ("creatinine", "umol/L"),
    "14682-9": ("creatinine", "umol/L"),
    "1742-6": ("alt", "U/L"),
    "1920-8": ("ast", "U/L"),
    "751-8": ("neutrophils", "10*9/L"),
}

#: Every (LOINC, specimen) the rules read, in a stable order (systemic rows, then ascitic).
LAB_KIND_TABLE: Final[tuple[LabKind, ...]] = (
    *(
        LabKind(loinc, specimen, kind, unit)
        for loinc, (kind, unit) in _SYSTEMIC.items()
        for specimen in SYSTEMIC_SPECIMENS
    ),
    # Neutrophils (751-8) on ascitic fluid = the ascitic PMN count (EASL 2018 SBP criterion).
    LabKind("751-8", ASCITIC_FLUID, "ascitic_pmn", "10*9/L"),
)
_BY_KEY: Final[dict[tuple[str, str], LabKind]] = {
    (row.loinc, row.specimen): row for row in LAB_KIND_TABLE
}
#: The kinds read from blood: every kind but the ascitic PMN count.
SYSTEMIC_KINDS: Final = frozenset(kind for kind, _ in _SYSTEMIC.values())


def lab_row(loinc: str, specimen: str | None) -> LabKind | None:
    """The table row of a result (None: no rule reads this analyte on this specimen).

    A missing specimen is the contract's default, serum.
    """
    return _BY_KEY.get((loinc, "serum" if specimen is None else specimen))


def lab_kind(loinc: str, specimen: str | None) -> str | None:
    """The observation kind of a result of `loinc` on `specimen`, or None."""
    row = lab_row(loinc, specimen)
    return None if row is None else row.kind


def lab_kind_rows() -> tuple[tuple[str, str, str, str], ...]:
    """The table as (loinc, specimen, kind, canonical unit) rows, e.g. for a SQL VALUES list."""
    return tuple((row.loinc, row.specimen, row.kind, row.unit) for row in LAB_KIND_TABLE)


__all__ = [
    "ASCITIC_FLUID",
    "LAB_KIND_TABLE",
    "SYSTEMIC_KINDS",
    "SYSTEMIC_SPECIMENS",
    "LabKind",
    "lab_kind",
    "lab_kind_rows",
    "lab_row",
]
