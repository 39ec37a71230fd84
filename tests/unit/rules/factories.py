"""Builders of arriving facts for the rules tests: valid by default, every id unique."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from schemas import (
    AdverseEventReported,
    AdverseEventUpdated,
    Arm,
    Causality,
    DeathRecorded,
    Expectedness,
    LabResultRecorded,
    Outcome,
    ParticipantEnrolled,
    SeriousnessCriterion,
    Treatment,
    TreatmentAdministered,
)

TRIAL = "NCT01724398"
SITE = "S01"
T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def unique(prefix: str) -> str:
    """Return a code no other test uses."""
    return f"{prefix}-{uuid4().hex[:10]}"


def envelope(
    participant_id: str,
    *,
    at: datetime = T0,
    recorded_at: datetime | None = None,
    event_id: UUID | None = None,
    site_id: str = SITE,
    trial_id: str = TRIAL,
) -> dict[str, Any]:
    """Envelope fields of an arriving fact."""
    return {
        "event_id": event_id or uuid4(),
        "trial_id": trial_id,
        "site_id": site_id,
        "participant_id": participant_id,
        "occurred_at": at,
        "recorded_at": recorded_at or at + timedelta(minutes=5),
        "source": "edc",
        "source_ref": unique("ref"),
        "actor": "tester",
    }


def enrolled(participant_id: str, *, arm: Arm = Arm.UC_MSC, **env: Any) -> ParticipantEnrolled:
    """A randomisation to `arm`."""
    return ParticipantEnrolled(
        **envelope(participant_id, **env), payload={"arm": arm, "baseline_meld": 22}
    )


def treated(
    participant_id: str, treatment: Treatment = Treatment.UC_MSC_INFUSION, **env: Any
) -> TreatmentAdministered:
    """A procedure starting at `at`."""
    details: dict[str, Any] = {"treatment": treatment}
    if treatment is Treatment.UC_MSC_INFUSION:
        details["dose_cells_per_kg"] = 1e5
    if treatment is Treatment.PLASMA_EXCHANGE:
        details["volume_ml"] = 2000.0
    return TreatmentAdministered(**envelope(participant_id, **env), payload=details)


def ae_payload(
    ae_ref: str = "AE-1",
    *,
    criteria: tuple[SeriousnessCriterion, ...] = (),
    grade: int = 2,
    planned: bool = False,
    relatedness: Causality = Causality.NOT_APPLICABLE,
    expectedness: Expectedness = Expectedness.UNKNOWN,
    outcome: Outcome = Outcome.UNKNOWN,
    awareness_at: datetime | None = None,
    term: str = "Sepsis",
) -> dict[str, Any]:
    """Payload of an AE report or update."""
    return {
        "ae_ref": ae_ref,
        "term": term,
        "ctcae_grade": grade,
        "seriousness_criteria": criteria,
        "planned_admission_for_procedure": planned,
        "relatedness_uc_msc": relatedness,
        "expectedness": expectedness,
        "outcome": outcome,
        "awareness_at": awareness_at,
    }


def ae_reported(
    participant_id: str, *, env: dict[str, Any] | None = None, **payload: Any
) -> AdverseEventReported:
    """An AE report; keyword arguments go to `ae_payload`."""
    return AdverseEventReported(
        **envelope(participant_id, **(env or {})), payload=ae_payload(**payload)
    )


def ae_updated(
    participant_id: str, *, env: dict[str, Any] | None = None, **payload: Any
) -> AdverseEventUpdated:
    """An AE update carrying the AE's full state again."""
    return AdverseEventUpdated(
        **envelope(participant_id, **(env or {})), payload=ae_payload(**payload)
    )


def died(participant_id: str, *, related_ae_ref: str | None = None, **env: Any) -> DeathRecorded:
    """A death at `at`."""
    payload = {"cause_category": "liver_failure", "related_ae_ref": related_ae_ref}
    return DeathRecorded(**envelope(participant_id, **env), payload=payload)


def lab(participant_id: str, **env: Any) -> LabResultRecorded:
    """A bilirubin result the SAE rules ignore."""
    payload = {"loinc": "1975-2", "result": {"value": 5.0, "unit": "mg/dL"}}
    return LabResultRecorded(**envelope(participant_id, **env), payload=payload)
