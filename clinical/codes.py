"""Codes the clinical rules recognise: vital-sign kinds and AE term lists.

Laboratory kinds, keyed by LOINC and specimen, are `clinical.labs`. CTCAE LLT codes are
RULES.md §0.6. Term lists match the reported
term after `normalise_term` (lower case, US spelling, single spaces), because MedDRA PT
codes are licensed and not on the wire [UNCONF: PT status of each term].
"""

from __future__ import annotations

import re
from typing import Final

#: Vital sign -> observation kind and canonical unit.
VITAL_KINDS: Final[dict[str, tuple[str, str]]] = {
    "temperature": ("temp", "Cel"),
    "heart_rate": ("hr", "/min"),
    "respiratory_rate": ("rr", "/min"),
    "systolic_bp": ("sbp", "mm[Hg]"),
    "mean_arterial_pressure": ("map", "mm[Hg]"),
    "spo2": ("spo2", "%"),
    "gcs": ("gcs", "{score}"),
    "urine_output": ("uo", "mL/kg/h"),
}

#: RULES.md §2 HE-03.
HE_TERMS: Final = frozenset({"hepatic encephalopathy", "encephalopathy", "hepatic coma"})
HE_LLT: Final = frozenset({"10014625"})

#: RULES.md §3 VB term list and the CTCAE bleeding LLTs of §0.6 (not "Varices oesophageal").
BLEEDING_TERMS: Final = frozenset(
    {
        "esophageal varices hemorrhage",
        "esophageal variceal hemorrhage",
        "gastric varices hemorrhage",
        "gastric variceal hemorrhage",
        "hematemesis",
        "melena",
        "upper gastrointestinal hemorrhage",
        "gastrointestinal hemorrhage",
        "hemorrhagic portal hypertensive gastropathy",
        "gastric hemorrhage",
        "esophageal hemorrhage",
        "duodenal hemorrhage",
    }
)
BLEEDING_LLT: Final = frozenset({"10015453", "10055356", "10017789", "10015384", "10055242"})

#: SOC "Infections and infestations" cannot be read without MedDRA: words that mark an
#: infection term, plus the §0.6 infection LLTs [DC; UNCONF].
INFECTION_WORDS: Final = (
    "infection",
    "sepsis",
    "septic",
    "bacteremia",
    "pneumonia",
    "peritonitis",
    "cellulitis",
    "abscess",
    "cholangitis",
)
INFECTION_LLT: Final = frozenset({"10040047", "10057262", "10007810"})
CATHETER_INFECTION_TERMS: Final = frozenset({"catheter related infection"})
CATHETER_INFECTION_LLT: Final = frozenset({"10007810"})

#: RULES.md §4.4 IR-MSC-01 and §4.5 PE-03 terms with their §0.6 LLTs.
ANAPHYLAXIS: Final = "anaphylaxis"
IR_MSC_TERMS: Final = frozenset(
    {"infusion related reaction", "allergic reaction", ANAPHYLAXIS, "chills", "urticaria", "fever"}
)
IR_MSC_LLT: Final = frozenset(
    {"10051792", "10001718", "10002218", "10008531", "10046735", "10016558"}
)
PLASMA_ALLERGY_TERMS: Final = frozenset({"allergic reaction", ANAPHYLAXIS, "urticaria"})
PLASMA_ALLERGY_LLT: Final = frozenset({"10001718", "10002218", "10046735"})
#: RULES.md §4.5 PE-01 symptomatic citrate toxicity (plus CTCAE Hypocalcemia, §0.6).
CITRATE_TERMS: Final = frozenset(
    {"paresthesia", "tetany", "muscle cramp", "cramp", "muscle spasms", "hypocalcemia"}
)
CITRATE_LLT: Final = frozenset({"10033987", "10020949"})
#: RULES.md §4.5 PE-04 new hypoxaemia / respiratory distress after plasma [DC word list].
RESPIRATORY_WORDS: Final = (
    "hypoxia",
    "hypoxemia",
    "respiratory distress",
    "respiratory failure",
    "dyspnea",
    "lung injury",
    "pulmonary edema",
)
#: RULES.md §4.5 PE-05: a complication of the vascular access [DC word lists].
CATHETER_WORDS: Final = ("catheter", "access site", "vascular access", "central venous")
ACCESS_BLEEDING_WORDS: Final = ("hemorrhage", "bleeding", "hematoma")
#: RULES.md §4.4 IR-MSC-03 thromboembolic AE [DC word list].
THROMBOEMBOLIC_WORDS: Final = ("thrombosis", "thromboembolic", "embolism")

SPELLING: Final = (
    ("oesophag", "esophag"),
    ("haem", "hem"),
    ("aemia", "emia"),
    ("melaena", "melena"),
    ("paraesthesia", "paresthesia"),
    ("oedema", "edema"),
    ("gastro intestinal", "gastrointestinal"),
)
SEPARATORS: Final = re.compile(r"[\s\-_/,]+")


def normalise_term(term: str) -> str:
    """Lower-case, US-spell and single-space a reported term for matching."""
    text = SEPARATORS.sub(" ", term.lower()).strip()
    for british, american in SPELLING:
        text = text.replace(british, american)
    return text


def term_in(term: str, llt: str | None, *, terms: frozenset[str], llts: frozenset[str]) -> bool:
    """Tell whether a reported AE matches a term list or its LLT codes."""
    return (llt is not None and llt in llts) or normalise_term(term) in terms


def term_has_word(
    term: str, llt: str | None, *, words: tuple[str, ...], llts: frozenset[str]
) -> bool:
    """Tell whether a reported AE contains one of `words` or carries one of `llts`."""
    text = normalise_term(term)
    return (llt is not None and llt in llts) or any(word in text for word in words)
