"""Hypothesis strategies for the rules tests: plausible fact histories of a few participants."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import strategies as st

from schemas import (
    AdverseEventReported,
    AdverseEventUpdated,
    Arm,
    Causality,
    ClinicalFact,
    DeathRecorded,
    Expectedness,
    LabResultRecorded,
    Outcome,
    ParticipantEnrolled,
    SeriousnessCriterion,
    Treatment,
    TreatmentAdministered,
)

from .factories import SITE, T0, TRIAL, ae_payload

PARTICIPANTS = ("P-001", "P-002", "P-003")
AE_REFS = ("AE-1", "AE-2", "AE-3")
KINDS = ("enrolled", "treated", "ae_reported", "ae_updated", "died", "lab")


@st.composite
def _envelope(draw: st.DrawFn) -> dict[str, Any]:
    at = T0 + timedelta(minutes=draw(st.integers(min_value=0, max_value=60 * 24 * 30)))
    return {
        "event_id": draw(st.uuids()),
        "trial_id": TRIAL,
        "site_id": SITE,
        "participant_id": draw(st.sampled_from(PARTICIPANTS)),
        "occurred_at": at,
        "recorded_at": at + timedelta(minutes=draw(st.integers(min_value=0, max_value=60 * 72))),
        "source": "edc",
        "source_ref": f"ref-{draw(st.integers(min_value=0, max_value=10**9))}",
        "actor": "tester",
    }


@st.composite
def _ae(draw: st.DrawFn) -> dict[str, Any]:
    return ae_payload(
        draw(st.sampled_from(AE_REFS)),
        criteria=tuple(draw(st.sets(st.sampled_from(list(SeriousnessCriterion)), max_size=3))),
        grade=draw(st.integers(min_value=1, max_value=5)),
        planned=draw(st.booleans()),
        relatedness=draw(st.sampled_from(list(Causality))),
        expectedness=draw(st.sampled_from(list(Expectedness))),
        outcome=draw(st.sampled_from(list(Outcome))),
        awareness_at=draw(st.none() | st.just(T0 + timedelta(hours=1))),
    )


@st.composite
def facts(draw: st.DrawFn) -> ClinicalFact:
    """One arriving fact of any kind the SAE and death rules read (plus one they ignore)."""
    env = draw(_envelope())
    kind = draw(st.sampled_from(KINDS))
    if kind == "enrolled":
        return ParticipantEnrolled(**env, payload={"arm": draw(st.sampled_from(list(Arm)))})
    if kind == "treated":
        treatment = draw(st.sampled_from([Treatment.UC_MSC_INFUSION, Treatment.PLASMA_EXCHANGE]))
        details = {"dose_cells_per_kg": 1e5, "volume_ml": 2000.0}
        return TreatmentAdministered(**env, payload={"treatment": treatment, **details})
    if kind in {"ae_reported", "ae_updated"}:
        model = AdverseEventReported if kind == "ae_reported" else AdverseEventUpdated
        return model(**env, payload=draw(_ae()))
    if kind == "died":
        return DeathRecorded(**env, payload={"cause_category": "unknown"})
    return LabResultRecorded(
        **env, payload={"loinc": "1742-6", "result": {"value": 80.0, "unit": "U/L"}}
    )


def fact_histories(max_size: int = 40) -> st.SearchStrategy[list[ClinicalFact]]:
    """Histories of up to `max_size` facts with unique event ids, in arrival order."""
    return st.lists(facts(), max_size=max_size, unique_by=lambda fact: fact.event_id)
