"""Clinical definitions the SAE-family rules share (core layer): seriousness, fatality, day 0."""

from __future__ import annotations

from datetime import datetime

from schemas import (
    AdverseEventReported,
    AdverseEventUpdated,
    Causality,
    ClinicalFact,
    Expectedness,
    FactCorrected,
    Outcome,
    SeriousnessCriterion,
)
from services.rules.core.state import AdverseEventState, ParticipantState

#: Criteria a protocol-planned admission for UC-MSC/PE does not count for (RULES.md SAE-01 [DC]).
#: A planned admission that is *prolonged* by the AE is still serious (ICH E2A "prolongation").
_PLANNED_ADMISSION_EXEMPT = frozenset({SeriousnessCriterion.HOSPITALISATION.value})
_AE_FACTS = (AdverseEventReported, AdverseEventUpdated, FactCorrected)
SUSPECTED = frozenset(
    {Causality.POSSIBLE.value, Causality.PROBABLE.value, Causality.DEFINITE.value}
)


def touched_ae(state: ParticipantState, fact: ClinicalFact) -> AdverseEventState | None:
    """Return the AE whose values `fact` just set (report, update or correction), if any."""
    if not isinstance(fact, _AE_FACTS):
        return None
    return state.adverse_event_of(fact.event_id)


def qualifying_criteria(ae: AdverseEventState) -> tuple[str, ...]:
    """Seriousness criteria that make the AE an SAE, after the planned-admission exclusion."""
    if not ae.planned_admission_for_procedure:
        return ae.seriousness_criteria
    return tuple(c for c in ae.seriousness_criteria if c not in _PLANNED_ADMISSION_EXEMPT)


def is_serious(ae: AdverseEventState) -> bool:
    """ICH E2A: any seriousness criterion, a protocol-planned procedure admission excepted."""
    return bool(qualifying_criteria(ae))


def is_fatal(ae: AdverseEventState) -> bool:
    """Tell whether the AE ended in death: outcome fatal, CTCAE grade 5 or 'death' criterion."""
    return (
        ae.outcome == Outcome.FATAL.value
        or ae.ctcae_grade == 5
        or SeriousnessCriterion.DEATH.value in ae.seriousness_criteria
    )


def is_life_threatening(ae: AdverseEventState) -> bool:
    """ICH E2A life-threatening: the reporter ticked that criterion."""
    return SeriousnessCriterion.LIFE_THREATENING.value in ae.seriousness_criteria


def is_susar_candidate(ae: AdverseEventState) -> bool:
    """Serious, suspected to be related to UC-MSC, and unexpected against the IB."""
    return (
        is_serious(ae)
        and ae.relatedness_uc_msc in SUSPECTED
        and ae.expectedness == Expectedness.UNEXPECTED.value
    )


def day0(ae: AdverseEventState, fact: ClinicalFact) -> datetime:
    """Start of a reporting clock: investigator awareness, else when safetymon learned it."""
    return ae.awareness_at or fact.recorded_at


def ae_values(ae: AdverseEventState) -> dict[str, str | int | bool | None]:
    """Signal values that describe an AE with codes only (term and grade allowed, no narrative)."""
    return {
        "ae_ref": ae.ae_ref,
        "term": ae.term,
        "ctcae_grade": ae.ctcae_grade,
        "seriousness_criteria": ",".join(qualifying_criteria(ae)) or None,
        "relatedness_uc_msc": ae.relatedness_uc_msc,
        "expectedness": ae.expectedness,
        "outcome": ae.outcome,
    }


def event_type(fact: ClinicalFact) -> str:
    """Return the wire discriminator of a fact, for signal values."""
    return str(getattr(fact, "event_type", type(fact).__name__))
