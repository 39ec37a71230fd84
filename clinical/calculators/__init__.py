"""Pure clinical calculators of the rules core: MELD family, CTCAE v5.0 labs, AKI, SIRS/qSOFA, HE.

Every module cites its source; RULES.md §2, §4.2, §5, §6 and §7 hold the criteria and the
published test vectors. No I/O, no clock: times and values arrive as data.
"""

from __future__ import annotations

from clinical.calculators.aki import (
    AkiAssessment,
    CreatinineSample,
    stage_aki,
)
from clinical.calculators.ctcae import (
    GradingContext,
    grade,
    supported_terms,
    term_unit,
)
from clinical.calculators.errors import (
    CalculatorError,
    InvalidInputError,
    MissingInputError,
    UnknownTermError,
)
from clinical.calculators.meld import (
    MELD_CAP,
    Meld3Score,
    MeldLabs,
    albumin_g_dl,
    bilirubin_mg_dl,
    creatinine_mg_dl,
    meld,
    meld_3,
    meld_i,
    meld_na,
    meld_na_from_meld,
)
from clinical.calculators.sepsis import (
    CriteriaCount,
    SirsObservations,
    altered_mentation,
    qsofa,
    sirs,
)
from clinical.calculators.west_haven import (
    ctcae_encephalopathy_grade,
    is_brain_failure,
    is_overt,
    ishen_class,
    west_haven_from_ctcae,
)

__all__ = [
    "MELD_CAP",
    "AkiAssessment",
    "CalculatorError",
    "CreatinineSample",
    "CriteriaCount",
    "GradingContext",
    "InvalidInputError",
    "Meld3Score",
    "MeldLabs",
    "MissingInputError",
    "SirsObservations",
    "UnknownTermError",
    "albumin_g_dl",
    "altered_mentation",
    "bilirubin_mg_dl",
    "creatinine_mg_dl",
    "ctcae_encephalopathy_grade",
    "grade",
    "is_brain_failure",
    "is_overt",
    "ishen_class",
    "meld",
    "meld_3",
    "meld_i",
    "meld_na",
    "meld_na_from_meld",
    "qsofa",
    "sirs",
    "stage_aki",
    "supported_terms",
    "term_unit",
    "west_haven_from_ctcae",
]
