"""Which AE terms an email may carry: controlled (coded) terms only, never verbatim free text.

A site types the AE term; it can hold anything ("Pneumonia for <name> MRN <number>"). Rules
quote it in a signal's reason and values, and a reason is what an email shows. So notify
shows a term only when it is one of the controlled terms below (normalised as the rules and
the DSMB report normalise: lower case, single spaces, US spelling) and otherwise replaces it
with `WITHHELD`; the safety officer opens the record in the EDC by its evidence event ids.

`CONTROLLED_TERMS` is the product's own term list: the DSMB report's body-system catalogue
(MedDRA preferred terms the rules and the report classify by) and the CTCAE v5.0 lab terms
the rules grade. A service never imports another, so the list is repeated here;
tests/unit/notify/test_notify_terms.py checks it still equals theirs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

WITHHELD: Final = "[uncoded AE term withheld]"
#: Signal value names that carry a reported term.
TERM_VALUES: Final = frozenset({"term"})
_SPELLING: Final = (
    ("oesophag", "esophag"),
    ("haem", "hem"),
    ("aemia", "emia"),
    ("melaena", "melena"),
    ("paraesthesia", "paresthesia"),
    ("oedema", "edema"),
    ("gastro intestinal", "gastrointestinal"),
)
#: A term as the rules quote it in a reason: 'term'.
_QUOTED: Final = re.compile(r"'([^'\n]*)'")
CONTROLLED_TERMS: Final = frozenset(
    {
        "abdominal distension",
        "acute kidney injury",
        "alanine aminotransferase increased",
        "allergic reaction",
        "anaphylaxis",
        "anemia",
        "anorexia",
        "ascites",
        "aspartate aminotransferase increased",
        "blood bilirubin increased",
        "catheter related infection",
        "chills",
        "creatinine increased",
        "diarrhea",
        "edema limbs",
        "encephalopathy",
        "esophageal varices hemorrhage",
        "fever",
        "gastric varices hemorrhage",
        "gastrointestinal hemorrhage",
        "hematemesis",
        "hepatic encephalopathy",
        "hepatic failure",
        "hepatorenal syndrome",
        "hyperkalemia",
        "hypocalcemia",
        "hypocalcemia (ionised)",
        "hypokalemia",
        "hyponatremia",
        "hypotension",
        "infusion related reaction",
        "inr increased",
        "insomnia",
        "lung infection",
        "melena",
        "nausea",
        "neutrophil count decreased",
        "paresthesia",
        "peritoneal infection",
        "platelet count decreased",
        "pruritus",
        "sepsis",
        "thromboembolic event",
        "upper gastrointestinal hemorrhage",
        "urinary tract infection",
        "urticaria",
        "vomiting",
        "white blood cell decreased",
    }
)


def normalise_term(term: str) -> str:
    """Lower-case, single-space and US-spell a term (the rules' normalisation)."""
    text = " ".join(term.lower().replace("-", " ").replace("_", " ").replace("/", " ").split())
    text = " ".join(text.replace(",", " ").split())
    for british, american in _SPELLING:
        text = text.replace(british, american)
    return text


def is_controlled(term: str) -> bool:
    """True when `term` is a controlled term (after normalisation)."""
    return normalise_term(term) in CONTROLLED_TERMS


def redact_reason(reason: str, values: Mapping[str, object]) -> str:
    """The reason with every uncontrolled term replaced by `WITHHELD`.

    The reported term named in the values is replaced wherever it appears (it may contain a
    quote); then any remaining quoted text that is not a controlled term, since rules quote
    terms as 'term'.
    """
    for name in TERM_VALUES:
        term = values.get(name)
        if isinstance(term, str) and term and not is_controlled(term):
            reason = reason.replace(term, WITHHELD)
    return _QUOTED.sub(
        lambda m: (
            m.group(0) if is_controlled(m.group(1)) or m.group(1) == WITHHELD else f"'{WITHHELD}'"
        ),
        reason,
    )


def redact_value(name: str, value: object) -> object:
    """A term-carrying value that is not controlled becomes `WITHHELD`; others unchanged."""
    if name in TERM_VALUES and isinstance(value, str) and not is_controlled(value):
        return WITHHELD
    return value
