"""Codes, units and reference ranges the demo sites' laboratories send (demo tooling).

LOINC codes follow RULES.md §0.5 and LLT codes RULES.md §0.6. Each site's laboratory has one
reporting convention, as real hospital laboratories do: S01 sends SI units in ASCII, S02 SI
units with a micro sign, "10^9/L" and Asia/Shanghai offsets, S03 conventional units
(bilirubin 1975-2 in mg/dL, creatinine 2160-0 in "mg/dl", albumin and haemoglobin in g/dL).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Final

# Index of each analyte in the tuple a course returns, in canonical SI units.
BILIRUBIN, INR, CREATININE, ALT, AST, ALBUMIN, SODIUM, PLATELETS, WBC, HB, AMMONIA = range(11)
ANALYTE_COUNT: Final = 11

#: Conversion factors of RULES.md §0.4 (conventional unit x factor = SI unit).
BILIRUBIN_MG_DL: Final = 17.1
CREATININE_MG_DL: Final = 88.4

IONISED_CALCIUM_LOINC: Final = "1994-3"
BLOOD_CULTURE_LOINC: Final = "600-7"


@dataclass(frozen=True, slots=True)
class LabSpec:
    """How one laboratory reports one analyte: code, unit, precision and reference range."""

    analyte: int
    loinc: str
    unit: str
    divisor: float  # canonical SI value / divisor = value in `unit`
    decimals: int
    low: float
    high: float
    specimen: str

    def value(self, canonical: float) -> float | int:
        """Express a canonical SI value in this laboratory's unit and precision."""
        if self.decimals == 0:
            return round(canonical / self.divisor)
        return round(canonical / self.divisor, self.decimals)


@dataclass(frozen=True, slots=True)
class SiteProfile:
    """Conventions of one site's source systems."""

    conventional_units: bool
    micro_sign: bool
    local_lab_times: bool  # lab and vitals feeds send Asia/Shanghai offsets
    local_awareness: bool  # the EDC sends awareness_at with an Asia/Shanghai offset


PROFILES: Final = (
    SiteProfile(
        conventional_units=False, micro_sign=False, local_lab_times=False, local_awareness=False
    ),
    SiteProfile(
        conventional_units=False, micro_sign=True, local_lab_times=True, local_awareness=False
    ),
    SiteProfile(
        conventional_units=True, micro_sign=False, local_lab_times=False, local_awareness=True
    ),
)


def profile_for(site_index: int) -> SiteProfile:
    """Return the conventions of the n-th site (they repeat beyond three sites)."""
    return PROFILES[site_index % len(PROFILES)]


@cache
def lab_specs(profile: SiteProfile, sex: str) -> tuple[LabSpec, ...]:
    """Return the routine panel as one laboratory reports it, in analyte order."""
    umol = "µmol/L" if profile.micro_sign else "umol/L"
    count = "10^9/L" if profile.micro_sign else "10*9/L"
    male = sex == "M"
    if profile.conventional_units:
        bilirubin = LabSpec(BILIRUBIN, "1975-2", "mg/dL", BILIRUBIN_MG_DL, 1, 0.2, 1.2, "serum")
        creatinine = LabSpec(
            CREATININE,
            "2160-0",
            "mg/dl",
            CREATININE_MG_DL,
            2,
            0.7 if male else 0.5,
            1.3 if male else 1.1,
            "serum",
        )
        albumin = LabSpec(ALBUMIN, "1751-7", "g/dL", 10.0, 1, 3.5, 5.0, "serum")
        haemoglobin = LabSpec(
            HB, "718-7", "g/dL", 10.0, 1, 13.0 if male else 11.5, 17.5 if male else 15.0, "blood"
        )
    else:
        bilirubin = LabSpec(BILIRUBIN, "14631-6", umol, 1.0, 1, 3.4, 20.5, "serum")
        creatinine = LabSpec(
            CREATININE, "14682-9", umol, 1.0, 0, 57 if male else 41, 111 if male else 81, "serum"
        )
        albumin = LabSpec(ALBUMIN, "1751-7", "g/L", 1.0, 1, 40.0, 55.0, "serum")
        haemoglobin = LabSpec(
            HB, "718-7", "g/L", 1.0, 0, 130 if male else 115, 175 if male else 150, "blood"
        )
    return (
        bilirubin,
        LabSpec(INR, "6301-6", "{INR}", 1.0, 2, 0.8, 1.2, "plasma"),
        creatinine,
        LabSpec(ALT, "1742-6", "U/L", 1.0, 0, 9 if male else 7, 50 if male else 40, "serum"),
        LabSpec(AST, "1920-8", "U/L", 1.0, 0, 15 if male else 13, 40 if male else 35, "serum"),
        albumin,
        LabSpec(SODIUM, "2951-2", "mmol/L", 1.0, 1, 137.0, 147.0, "serum"),
        LabSpec(PLATELETS, "777-3", count, 1.0, 0, 125, 350, "blood"),
        LabSpec(WBC, "6690-2", count, 1.0, 2, 3.5, 9.5, "blood"),
        haemoglobin,
        LabSpec(AMMONIA, "16362-6", umol, 1.0, 0, 11, 32, "plasma"),
    )


def meld(bilirubin_umol: float, inr: float, creatinine_umol: float) -> int:
    """Original MELD as OPTN implemented it (RULES.md §5.1), from SI inputs."""
    bili = max(bilirubin_umol / BILIRUBIN_MG_DL, 1.0)
    creat = min(max(creatinine_umol / CREATININE_MG_DL, 1.0), 4.0)
    score = 0.957 * math.log(creat) + 0.378 * math.log(bili) + 1.120 * math.log(max(inr, 1.0))
    return min(math.floor(round((score + 0.643) * 10, 6) + 0.5), 40)


#: CTCAE LLT codes of RULES.md §0.6 for the terms the demo reports; other terms go uncoded.
LLT_CODES: Final = {
    "Fever": "10016558",
    "Chills": "10008531",
    "Infusion related reaction": "10051792",
    "Urticaria": "10046735",
    "Paresthesia": "10033987",
    "Hypocalcemia": "10020949",
    "Acute kidney injury": "10069339",
    "Sepsis": "10040047",
    "Peritoneal infection": "10057262",
    "Catheter related infection": "10007810",
    "Hepatic failure": "10019663",
    "Oesophageal varices haemorrhage": "10015453",
}

#: Common non-serious AEs in ACLF unrelated to the procedures: (term, highest grade).
BACKGROUND_TERMS: Final = (
    ("Nausea", 2),
    ("Fatigue", 2),
    ("Pruritus", 2),
    ("Abdominal distension", 2),
    ("Diarrhea", 1),
    ("Insomnia", 1),
    ("Hypokalemia", 2),
    ("Edema limbs", 2),
    ("Anorexia", 2),
    ("Rash maculo-papular", 1),
)
