"""CDISC SDTM domains (DM, AE + SUPPAE, LB, VS, EX, DS) to safetymon submissions (pure mapping)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from safetymon.importers._types import Outcome, without_conflicts
from safetymon.importers.sdtm._common import SDTM_UNITS, Row, ucum
from safetymon.importers.sdtm._deaths import map_deaths, only_in_dm
from safetymon.importers.sdtm._events import map_ae, map_dm, supplemental
from safetymon.importers.sdtm._findings import LB_LOINC, VS_SIGNS, map_ex, map_lb, map_vs
from safetymon.importers.sdtm._study import Study, StudyMappingError, study_from_toml

#: Domains in the order they are sent: enrolment before anything about the participant; DS is
#: read for deaths only, sent last (with the deaths only DM records).
DOMAINS = ("DM", "AE", "EX", "LB", "VS", "DS")

__all__ = [
    "DOMAINS",
    "LB_LOINC",
    "SDTM_UNITS",
    "VS_SIGNS",
    "Row",
    "Study",
    "StudyMappingError",
    "map_ae",
    "map_deaths",
    "map_dm",
    "map_ex",
    "map_lb",
    "map_study",
    "map_vs",
    "record_count",
    "sites_of",
    "study_from_toml",
    "supplemental",
    "ucum",
]


def sites_of(dm: Iterable[Row]) -> dict[str, str]:
    """USUBJID -> SITEID from DM, for the domains that do not carry the site."""
    return {row["USUBJID"].strip(): row.get("SITEID", "").strip() for row in dm}


def record_count(domains: Mapping[str, Sequence[Row]]) -> int:
    """How many outcomes `map_study` yields (the import's progress total).

    One per row (SUPPAE rows only qualify AE rows), plus one per death DM records and DS does not.
    """
    rows = sum(len(rows) for name, rows in domains.items() if name != "SUPPAE")
    return rows + only_in_dm(domains.get("DM", []), domains.get("DS", []))


def map_study(domains: Mapping[str, Sequence[Row]], study: Study) -> Iterator[Outcome]:
    """Every record of the given domains, DM first; a conflicting repeat key is rejected."""
    dm = domains.get("DM", [])
    sites = sites_of(dm)

    def outcomes() -> Iterator[Outcome]:
        yield from map_dm(dm, study)
        if "AE" in domains:
            supp = supplemental(domains.get("SUPPAE", []))
            yield from map_ae(domains["AE"], supp, study, sites=sites)
        yield from map_ex(domains.get("EX", []), study, sites=sites)
        yield from map_lb(domains.get("LB", []), study, sites=sites)
        yield from map_vs(domains.get("VS", []), study, sites=sites)
        yield from map_deaths(dm, domains.get("DS", []), study, sites=sites)

    return without_conflicts(outcomes())
