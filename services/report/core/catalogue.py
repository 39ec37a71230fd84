"""Codes the report classifies by (core layer): AESI term lists, body systems, lab kinds.

The term lists repeat the rules' catalogue (RULES.md §2-§6 and the LLTs of §0.6) because a
service never imports another; `tests/unit/report/test_catalogue.py` checks they agree with
`clinical.codes`, so the DSMB tables count what the alerts fire on. Terms are
matched after the same normalisation (lower case, US spelling, single spaces).
MedDRA is licensed and not on the wire, so the body system (SOC) of a reported term comes
from `BODY_SYSTEMS`; a term it does not list is shown under "Unclassified (no MedDRA code)".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: British -> US spelling, applied in order after lower-casing (as the rules do).
SPELLING: Final = (
    ("oesophag", "esophag"),
    ("haem", "hem"),
    ("aemia", "emia"),
    ("melaena", "melena"),
    ("paraesthesia", "paresthesia"),
    ("oedema", "edema"),
    ("gastro intestinal", "gastrointestinal"),
)

SUSPECTED: Final = ("possible", "probable", "definite")


@dataclass(frozen=True, slots=True)
class Matcher:
    """One way an AE belongs to a category: exact terms, words in the term, or LLT codes.

    `window` restricts the match to AEs with onset in a reaction window: "msc_reaction"
    (W_IR_MSC, infusion start to end + 24 h) or "pe_reaction" (W_IR_PE, PE start to end + 6 h).
    """

    terms: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    llts: tuple[str, ...] = ()
    window: str | None = None


@dataclass(frozen=True, slots=True)
class Category:
    """An event of special interest (RULES.md §8.1 (5))."""

    key: str
    label: str
    matchers: tuple[Matcher, ...]


_BLEEDING_TERMS: Final = (
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
)
_INFECTION_WORDS: Final = (
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
INFUSION_REACTION_TERMS: Final = (
    "infusion related reaction",
    "allergic reaction",
    "anaphylaxis",
    "chills",
    "urticaria",
)
ANAPHYLAXIS: Final = "anaphylaxis"
CATHETER_INFECTION: Final = Matcher(terms=("catheter related infection",), llts=("10007810",))

AESI: Final = (
    Category(
        "he",
        "Hepatic encephalopathy",
        (Matcher(("hepatic encephalopathy", "encephalopathy", "hepatic coma"), (), ("10014625",)),),
    ),
    Category(
        "bleeding",
        "Variceal / GI bleeding",
        (
            Matcher(
                _BLEEDING_TERMS, (), ("10015453", "10055356", "10017789", "10015384", "10055242")
            ),
        ),
    ),
    Category(
        "infection",
        "Infection",
        (Matcher((), _INFECTION_WORDS, ("10040047", "10057262", "10007810")),),
    ),
    Category(
        "infusion_reaction",
        "UC-MSC infusion reaction",
        (
            # RULES.md §4.4 IR-MSC-01: these terms, and fever, with onset after an infusion.
            Matcher(
                (*INFUSION_REACTION_TERMS, "fever"),
                (),
                ("10051792", "10001718", "10002218", "10008531", "10046735", "10016558"),
                window="msc_reaction",
            ),
        ),
    ),
    Category(
        "pe_complication",
        "Plasma-exchange complication",
        (
            # RULES.md §4.5 PE-01 (citrate), PE-02 (hypotension), PE-03 (plasma allergy).
            Matcher(
                (
                    "paresthesia",
                    "tetany",
                    "muscle cramp",
                    "cramp",
                    "muscle spasms",
                    "hypocalcemia",
                    "hypotension",
                    "allergic reaction",
                    "anaphylaxis",
                    "urticaria",
                ),
                (),
                ("10033987", "10020949", "10021097", "10001718", "10002218", "10046735"),
                window="pe_reaction",
            ),
        ),
    ),
    Category(
        "aki",
        "Acute kidney injury / HRS",
        (
            Matcher(
                ("acute kidney injury", "hepatorenal syndrome", "renal failure", "kidney failure"),
                (),
                ("10069339",),
            ),
        ),
    ),
)
BLEEDING: Final = AESI[1]

UNCLASSIFIED: Final = "Unclassified (no MedDRA code)"
#: Normalised term -> MedDRA SOC name (the terms the sites report in this trial) [DC].
BODY_SYSTEMS: Final = {
    "hepatic encephalopathy": "Nervous system disorders",
    "encephalopathy": "Nervous system disorders",
    "paresthesia": "Nervous system disorders",
    "insomnia": "Psychiatric disorders",
    "esophageal varices hemorrhage": "Gastrointestinal disorders",
    "gastric varices hemorrhage": "Gastrointestinal disorders",
    "upper gastrointestinal hemorrhage": "Gastrointestinal disorders",
    "gastrointestinal hemorrhage": "Gastrointestinal disorders",
    "hematemesis": "Gastrointestinal disorders",
    "melena": "Gastrointestinal disorders",
    "diarrhea": "Gastrointestinal disorders",
    "abdominal distension": "Gastrointestinal disorders",
    "ascites": "Gastrointestinal disorders",
    "nausea": "Gastrointestinal disorders",
    "vomiting": "Gastrointestinal disorders",
    "urinary tract infection": "Infections and infestations",
    "lung infection": "Infections and infestations",
    "catheter related infection": "Infections and infestations",
    "peritoneal infection": "Infections and infestations",
    "sepsis": "Infections and infestations",
    "hypokalemia": "Metabolism and nutrition disorders",
    "hypocalcemia": "Metabolism and nutrition disorders",
    "hyponatremia": "Metabolism and nutrition disorders",
    "anorexia": "Metabolism and nutrition disorders",
    "creatinine increased": "Investigations",
    "blood bilirubin increased": "Investigations",
    "pruritus": "Skin and subcutaneous tissue disorders",
    "urticaria": "Skin and subcutaneous tissue disorders",
    "fever": "General disorders and administration site conditions",
    "chills": "General disorders and administration site conditions",
    "edema limbs": "General disorders and administration site conditions",
    "thromboembolic event": "Vascular disorders",
    "hypotension": "Vascular disorders",
    "acute kidney injury": "Renal and urinary disorders",
    "hepatorenal syndrome": "Renal and urinary disorders",
    "hepatic failure": "Hepatobiliary disorders",
    "infusion related reaction": "Injury, poisoning and procedural complications",
    "allergic reaction": "Immune system disorders",
    "anaphylaxis": "Immune system disorders",
}


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


def normalise_term(term: str) -> str:
    """Lower-case, single-space and US-spell a reported term (the rules' normalisation)."""
    text = " ".join(term.lower().replace("-", " ").replace("_", " ").replace("/", " ").split())
    text = " ".join(text.replace(",", " ").split())
    for british, american in SPELLING:
        text = text.replace(british, american)
    return text


def body_system(term: str) -> str:
    """MedDRA SOC of a reported term, or `UNCLASSIFIED`."""
    return BODY_SYSTEMS.get(normalise_term(term), UNCLASSIFIED)
