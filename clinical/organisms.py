"""Organisms grown in blood cultures: which are common skin commensals (INF-05).

Source: RULES.md §4.3 INF-05 and the CDC/NHSN Patient Safety Component Manual, chapter 4
(bloodstream infection, LCBI criterion 2) with its Common Commensal list: a common commensal
(coagulase-negative staphylococci including S. epidermidis, Corynebacterium spp. other than
C. diphtheriae, Cutibacterium (Propionibacterium) acnes, Bacillus spp. other than B.
anthracis, Micrococcus spp., viridans group streptococci, Aerococcus spp., Rhodococcus spp.)
is a bloodstream infection only when grown from two or more blood specimens collected on
separate occasions on the same or consecutive calendar days. A single set is most often a
skin contaminant of the draw. Any other organism (a recognised pathogen) counts from one set.

An organism arrives as a SNOMED CT concept (`Organism.code`) and its display term. Codes
checked against published SNOMED CT value sets: 116197008 "Staphylococcus, coagulase
negative" (an HL7 FHIR organism value set and an NHSN CLABSI test-data generator), 60875001
"Staphylococcus epidermidis" (two published CLABSI/antibiogram tables; the FHIR importer's
tests use it), 77086004
"Genus Corynebacterium" (an HL7 FHIR value set), 84408007 "Bacillus cereus" (an openEHR
SNOMED CT organism list). The other members are recognised by their display term, since
their codes could not be verified here [UNCONF]: a code that is a commensal but arrives with
an unrecognised display is taken for a pathogen (alerting on one set is the safe error).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Final

#: SNOMED CT organism concepts of the common commensal list (checked, see above).
COMMENSAL_CODES: Final = frozenset({"116197008", "60875001", "77086004", "84408007"})
#: Display terms of the list's members, matched on the lower-cased display [DC].
_COMMENSAL: Final = re.compile(
    r"coagulase[\s-]*negative|\bstaphylococcus (epidermidis|hominis|capitis|haemolyticus"
    r"|hemolyticus|warneri|saprophyticus|simulans|cohnii)\b|\bcorynebacterium\b"
    r"|\b(cutibacterium|propionibacterium) acnes\b|\bmicrococcus\b|\bviridans\b"
    r"|\baerococcus\b|\brhodococcus\b|^(genus )?bacillus\b|\bbacillus (cereus|subtilis|"
    r"licheniformis|pumilus|megaterium|circulans|species|spp)\b"
)
#: Pathogens inside those genera: never commensal (C. diphtheriae, B. anthracis).
_PATHOGENIC: Final = re.compile(r"\bdiphtheriae\b|\banthracis\b")
#: Calendar days are the trial site's (Guangzhou, UTC+8 all year: China has no DST) [DC].
SITE_TIMEZONE: Final = timezone(timedelta(hours=8))


def is_common_commensal(code: str | None, display: str | None) -> bool:
    """Tell whether an organism is on the NHSN common commensal list (by code or display)."""
    text = (display or "").lower()
    if _PATHOGENIC.search(text):
        return False
    return code in COMMENSAL_CODES or bool(_COMMENSAL.search(text))


def site_day(at: datetime) -> date:
    """The calendar day at the trial site of a (timezone-aware) collection time."""
    return at.astimezone(SITE_TIMEZONE).date()


def same_or_consecutive_days(first: datetime, second: datetime) -> bool:
    """Two collections on the same or consecutive calendar days (NHSN, at the site)."""
    return abs((site_day(first) - site_day(second)).days) <= 1


__all__ = [
    "COMMENSAL_CODES",
    "SITE_TIMEZONE",
    "commensal_sql",
    "is_common_commensal",
    "same_or_consecutive_days",
    "site_day",
    "site_day_sql",
]


def commensal_sql(code: str, display: str) -> str:
    """DuckDB boolean of `is_common_commensal` over a code and a display column."""
    text = f"lower(coalesce({display}, ''))"
    codes = ", ".join(f"'{c}'" for c in sorted(COMMENSAL_CODES))
    return (
        f"(NOT regexp_matches({text}, '{_sql_pattern(_PATHOGENIC)}') AND "
        f"(coalesce({code} IN ({codes}), false) "
        f"OR regexp_matches({text}, '{_sql_pattern(_COMMENSAL)}')))"
    )


def site_day_sql(at: str) -> str:
    """DuckDB expression of `site_day` over a TIMESTAMPTZ column."""
    hours = int(SITE_TIMEZONE.utcoffset(None).total_seconds() // 3600)
    return f"CAST(timezone('UTC', {at}) + INTERVAL {hours} HOUR AS DATE)"


def _sql_pattern(pattern: re.Pattern[str]) -> str:
    return pattern.pattern.replace("'", "''")
