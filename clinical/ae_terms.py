"""AE terms: events of special interest, body systems, and matching terms in SQL.

MedDRA is licensed and not on the wire, so terms are matched after `codes.normalise_term`
(lower case, US spelling, single spaces) against the lists in `clinical.codes`, or by their
LLT codes. The AESI categories the DSMB tables count are built from the very lists the rules
fire on; `category_sql` renders a category for the report, `categories_of` for Python.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from clinical import codes
from clinical.sql import in_list, literal

UNCLASSIFIED: Final = "Unclassified (no MedDRA code)"


@dataclass(frozen=True, slots=True)
class Matcher:
    """One way an AE belongs to a category: exact terms, words in the term, or LLT codes.

    `window` restricts the match to AEs with onset in a reaction window: "msc_reaction"
    (infusion start to end + the configured hours) or "pe_reaction" (PE start to end + hours).
    """

    terms: frozenset[str] = frozenset()
    words: tuple[str, ...] = ()
    llts: frozenset[str] = frozenset()
    window: str | None = None

    def matches(self, term: str, llt: str | None, windows: Iterable[str] = ()) -> bool:
        """Tell whether an AE (reported term, LLT code, reaction windows it falls in) matches."""
        found = codes.term_in(term, llt, terms=self.terms, llts=self.llts) or (
            bool(self.words) and codes.term_has_word(term, llt, words=self.words, llts=self.llts)
        )
        return found and (self.window is None or self.window in set(windows))


@dataclass(frozen=True, slots=True)
class Category:
    """An adverse event of special interest (RULES.md §8.1 (5))."""

    key: str
    label: str
    matchers: tuple[Matcher, ...]


#: RULES.md §4.5 PE-02: hypotension during or after a plasma exchange.
PE_HYPOTENSION_TERMS: Final = frozenset({"hypotension"})
PE_HYPOTENSION_LLT: Final = frozenset({"10021097"})
AKI_TERMS: Final = frozenset(
    {"acute kidney injury", "hepatorenal syndrome", "renal failure", "kidney failure"}
)
AKI_LLT: Final = frozenset({"10069339"})

AESI: Final = (
    Category("he", "Hepatic encephalopathy", (Matcher(codes.HE_TERMS, llts=codes.HE_LLT),)),
    Category(
        "bleeding",
        "Variceal / GI bleeding",
        (Matcher(codes.BLEEDING_TERMS, llts=codes.BLEEDING_LLT),),
    ),
    Category(
        "infection",
        "Infection",
        (Matcher(words=codes.INFECTION_WORDS, llts=codes.INFECTION_LLT),),
    ),
    Category(
        "infusion_reaction",
        "UC-MSC infusion reaction",
        # RULES.md §4.4 IR-MSC-01: these terms (fever among them) after an infusion.
        (Matcher(codes.IR_MSC_TERMS, llts=codes.IR_MSC_LLT, window="msc_reaction"),),
    ),
    Category(
        "pe_complication",
        "Plasma-exchange complication",
        # RULES.md §4.5 PE-01 (citrate), PE-02 (hypotension), PE-03 (plasma allergy).
        (
            Matcher(
                codes.CITRATE_TERMS | PE_HYPOTENSION_TERMS | codes.PLASMA_ALLERGY_TERMS,
                llts=codes.CITRATE_LLT | PE_HYPOTENSION_LLT | codes.PLASMA_ALLERGY_LLT,
                window="pe_reaction",
            ),
        ),
    ),
    Category("aki", "Acute kidney injury / HRS", (Matcher(AKI_TERMS, llts=AKI_LLT),)),
)
BLEEDING: Final = AESI[1]
#: RULES.md §9 STOP-01: an infusion reaction counts towards the stopping rule when grade >= 3
#: or anaphylaxis (fever alone, an IR-MSC-01 term, does not).
INFUSION_REACTION_TERMS: Final = codes.IR_MSC_TERMS - {"fever"}
CATHETER_INFECTION: Final = Matcher(
    codes.CATHETER_INFECTION_TERMS, llts=codes.CATHETER_INFECTION_LLT
)


def categories_of(term: str, llt: str | None, windows: Iterable[str] = ()) -> tuple[str, ...]:
    """Keys of the AESI categories an AE belongs to, in `AESI` order."""
    inside = tuple(windows)
    return tuple(c.key for c in AESI if any(m.matches(term, llt, inside) for m in c.matchers))


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


def body_system(term: str) -> str:
    """MedDRA SOC of a reported term, or `UNCLASSIFIED`."""
    return BODY_SYSTEMS.get(codes.normalise_term(term), UNCLASSIFIED)


def normalise_term_sql(column: str) -> str:
    """DuckDB expression of `codes.normalise_term` over a VARCHAR column."""
    text = f"trim(regexp_replace(lower({column}), {literal(codes.SEPARATORS.pattern)}, ' ', 'g'))"
    for british, american in codes.SPELLING:
        text = f"replace({text}, {literal(british)}, {literal(american)})"
    return text


def matcher_sql(matcher: Matcher, *, nterm: str = "nterm", llt: str = "llt") -> str:
    """DuckDB boolean for `Matcher.matches` over a normalised term, an LLT and window flags.

    A window is read from the boolean column `in_<window>` (e.g. `in_msc_reaction`).
    """
    parts = []
    if matcher.terms:
        parts.append(f"{nterm} IN {in_list(matcher.terms)}")
    if matcher.llts:
        parts.append(f"coalesce({llt} IN {in_list(matcher.llts)}, false)")
    if matcher.words:
        parts.extend(f"contains({nterm}, {literal(word)})" for word in matcher.words)
    found = "(" + " OR ".join(parts) + ")"
    return found if matcher.window is None else f"({found} AND in_{matcher.window})"


def category_sql(category: Category, *, nterm: str = "nterm", llt: str = "llt") -> str:
    """DuckDB boolean: the AE belongs to `category`."""
    return " OR ".join(matcher_sql(m, nterm=nterm, llt=llt) for m in category.matchers)
