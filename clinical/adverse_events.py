"""What an adverse event *is*: serious, fatal, life-threatening, related, unexpected, SUSAR.

One definition, read three ways: the rules call these functions on each AE's latest values,
the DSMB report runs the SQL `predicates` generates from the same constants, and the audit
replays the rules. `tests/unit/clinical/test_ae_parity.py` checks Python and SQL agree on
generated AEs, so an AE that pages the safety officer is counted in the DSMB tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from clinical.sql import in_list, literal
from schemas import Causality, Expectedness, Outcome, SeriousnessCriterion

#: ICH E2A: a hospitalisation planned by the protocol (for UC-MSC or PE) is not, by itself, a
#: seriousness criterion. Every other criterion still counts on such an AE: a planned admission
#: that is prolonged, or an event during it that is life-threatening, is serious.
PLANNED_ADMISSION_EXEMPT: Final = frozenset({SeriousnessCriterion.HOSPITALISATION.value})
#: Causality assessments that count as "suspected" (ICH E2A "reasonable possibility").
SUSPECTED: Final = frozenset(
    {Causality.POSSIBLE.value, Causality.PROBABLE.value, Causality.DEFINITE.value}
)
FATAL_GRADE: Final = 5


class AdverseEvent(Protocol):
    """The latest values of one AE (the rules' AE state and a wire payload both fit)."""

    @property
    def ctcae_grade(self) -> int:
        """Latest CTCAE grade (1-5)."""

    @property
    def seriousness_criteria(self) -> tuple[str, ...]:
        """ICH E2A criteria as reported."""

    @property
    def planned_admission_for_procedure(self) -> bool:
        """The admission was planned for UC-MSC or PE."""

    @property
    def relatedness_uc_msc(self) -> str:
        """Causality against UC-MSC."""

    @property
    def relatedness_plasma_exchange(self) -> str:
        """Causality against plasma exchange."""

    @property
    def expectedness(self) -> str:
        """Against the reference safety information."""

    @property
    def outcome(self) -> str:
        """CDISC AEOUT, lower-cased."""


def qualifying_criteria(ae: AdverseEvent) -> tuple[str, ...]:
    """Seriousness criteria that make the AE an SAE, after the planned-admission exclusion."""
    if not ae.planned_admission_for_procedure:
        return tuple(ae.seriousness_criteria)
    return tuple(c for c in ae.seriousness_criteria if c not in PLANNED_ADMISSION_EXEMPT)


def is_serious(ae: AdverseEvent) -> bool:
    """ICH E2A: any seriousness criterion, a protocol-planned procedure admission excepted."""
    return bool(qualifying_criteria(ae))


def is_fatal(ae: AdverseEvent) -> bool:
    """The AE ended in death: outcome fatal, CTCAE grade 5, or the 'death' criterion."""
    return (
        ae.outcome == Outcome.FATAL.value
        or ae.ctcae_grade == FATAL_GRADE
        or SeriousnessCriterion.DEATH.value in ae.seriousness_criteria
    )


def is_life_threatening(ae: AdverseEvent) -> bool:
    """ICH E2A life-threatening: the reporter ticked that criterion."""
    return SeriousnessCriterion.LIFE_THREATENING.value in ae.seriousness_criteria


def is_related_to_uc_msc(ae: AdverseEvent) -> bool:
    """A reasonable possibility that UC-MSC caused it (the investigational product)."""
    return ae.relatedness_uc_msc in SUSPECTED


def is_related_to_plasma_exchange(ae: AdverseEvent) -> bool:
    """A reasonable possibility that the plasma exchange procedure caused it."""
    return ae.relatedness_plasma_exchange in SUSPECTED


def is_related(ae: AdverseEvent) -> bool:
    """Related to a trial intervention: UC-MSC or plasma exchange."""
    return is_related_to_uc_msc(ae) or is_related_to_plasma_exchange(ae)


def is_unexpected(ae: AdverseEvent) -> bool:
    """Not listed in the reference safety information (UC-MSC investigator's brochure)."""
    return ae.expectedness == Expectedness.UNEXPECTED.value


def is_susar_candidate(ae: AdverseEvent) -> bool:
    """Serious, suspected to be related to UC-MSC, and unexpected against the IB."""
    return is_serious(ae) and is_related_to_uc_msc(ae) and is_unexpected(ae)


@dataclass(frozen=True, slots=True)
class Columns:
    """SQL expressions holding an AE's latest values, for `predicates`."""

    criteria: str = "criteria_list"  # VARCHAR[]
    planned: str = "planned"  # BOOLEAN
    grade: str = "grade"  # INTEGER, the latest grade
    outcome: str = "outcome"
    rel_msc: str = "rel_msc"
    rel_pe: str = "rel_pe"
    expectedness: str = "expectedness"


def predicates(c: Columns = Columns()) -> dict[str, str]:
    """DuckDB boolean expressions of the classifications above, over columns `c`."""
    exempt = in_list(PLANNED_ADMISSION_EXEMPT)
    serious = (
        f"len(list_filter(coalesce({c.criteria}, []), "
        f"lambda x: NOT (coalesce({c.planned}, false) AND x IN {exempt}))) > 0"
    )
    fatal = (
        f"(coalesce({c.outcome} = {literal(Outcome.FATAL.value)}, false) "
        f"OR coalesce({c.grade} = {FATAL_GRADE}, false) "
        f"OR list_contains(coalesce({c.criteria}, []), "
        f"{literal(SeriousnessCriterion.DEATH.value)}))"
    )
    related_msc = f"coalesce({c.rel_msc} IN {in_list(SUSPECTED)}, false)"
    related_pe = f"coalesce({c.rel_pe} IN {in_list(SUSPECTED)}, false)"
    unexpected = f"coalesce({c.expectedness} = {literal(Expectedness.UNEXPECTED.value)}, false)"
    return {
        "serious": f"({serious})",
        "fatal": fatal,
        "life_threatening": (
            f"list_contains(coalesce({c.criteria}, []), "
            f"{literal(SeriousnessCriterion.LIFE_THREATENING.value)})"
        ),
        "related_uc_msc": related_msc,
        "related_pe": related_pe,
        "related": f"({related_msc} OR {related_pe})",
        "unexpected": unexpected,
        "susar_candidate": f"(({serious}) AND {related_msc} AND {unexpected})",
    }


def qualifying_criteria_sql(c: Columns = Columns()) -> str:
    """DuckDB VARCHAR[] of `qualifying_criteria` over columns `c`."""
    exempt = in_list(PLANNED_ADMISSION_EXEMPT)
    return (
        f"list_filter(coalesce({c.criteria}, []), "
        f"lambda x: NOT (coalesce({c.planned}, false) AND x IN {exempt}))"
    )
