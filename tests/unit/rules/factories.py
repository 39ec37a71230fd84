"""Builders of arriving facts for the rules tests: valid by default, every id unique."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from schemas import (
    AdverseEventReported,
    AdverseEventUpdated,
    Arm,
    Causality,
    ClinicalAssessmentRecorded,
    DeathRecorded,
    Expectedness,
    FactCorrected,
    LabResultRecorded,
    Outcome,
    ParticipantEnrolled,
    SeriousnessCriterion,
    SignalRaised,
    Treatment,
    TreatmentAdministered,
    VitalSignsRecorded,
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
    llt: str | None = None,
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
        "meddra_llt_code": llt,
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


# --- Clinical-rule builders: labs, vitals, West Haven, procedures (canonical SI units) ---

#: LOINC -> canonical unit ingest normalises to (services/ingest/core/units.py).
CANONICAL_UNITS = {
    "718-7": "g/L",
    "6690-2": "10*9/L",
    "777-3": "10*9/L",
    "751-8": "10*9/L",
    "6301-6": "{INR}",
    "16362-6": "umol/L",
    "2951-2": "mmol/L",
    "2823-3": "mmol/L",
    "1994-3": "mmol/L",
    "1995-0": "mmol/L",
    "33959-8": "ng/mL",
    "1988-5": "mg/L",
    "2524-7": "mmol/L",
    "600-7": "1",
}
LOINC = {
    "hb": "718-7",
    "wbc": "6690-2",
    "platelets": "777-3",
    "inr": "6301-6",
    "ammonia": "16362-6",
    "sodium": "2951-2",
    "potassium": "2823-3",
    "ica": "1994-3",
    "pct": "33959-8",
    "crp": "1988-5",
    "lactate": "2524-7",
    "culture": "600-7",
    "neutrophils": "751-8",
}
VITAL_UNITS = {
    "temperature": "Cel",
    "heart_rate": "/min",
    "respiratory_rate": "/min",
    "systolic_bp": "mm[Hg]",
    "diastolic_bp": "mm[Hg]",
    "mean_arterial_pressure": "mm[Hg]",
    "spo2": "%",
    "gcs": "{score}",
    "urine_output": "mL/kg/h",
}


def lab_result(
    participant_id: str,
    analyte: str,
    value: float,
    *,
    low: float | None = None,
    high: float | None = None,
    specimen: str = "serum",
    **env: Any,
) -> LabResultRecorded:
    """A lab result as ingest publishes it: value, normalised value and range in SI units."""
    loinc = LOINC[analyte]
    unit = CANONICAL_UNITS[loinc]
    payload = {
        "loinc": loinc,
        "result": {
            "value": value,
            "unit": unit,
            "normalised_value": value,
            "normalised_unit": unit,
        },
        "reference_low": low,
        "reference_high": high,
        "normalised_reference_low": low,
        "normalised_reference_high": high,
        "specimen": specimen,
    }
    return LabResultRecorded(**envelope(participant_id, **env), payload=payload)


def vitals(
    participant_id: str, *, env: dict[str, Any] | None = None, **observations: float
) -> VitalSignsRecorded:
    """One set of vital signs, e.g. vitals(pid, temperature=38.0, heart_rate=95)."""
    payload = {
        "observations": {
            name: {
                "value": value,
                "unit": VITAL_UNITS[name],
                "normalised_value": value,
                "normalised_unit": VITAL_UNITS[name],
            }
            for name, value in observations.items()
        }
    }
    return VitalSignsRecorded(**envelope(participant_id, **(env or {})), payload=payload)


def west_haven(participant_id: str, grade: int, **env: Any) -> ClinicalAssessmentRecorded:
    """A West Haven assessment."""
    return ClinicalAssessmentRecorded(
        **envelope(participant_id, **env), payload={"west_haven_grade": grade}
    )


def procedure(
    participant_id: str,
    treatment: Treatment,
    *,
    minutes: float | None = None,
    **env: Any,
) -> TreatmentAdministered:
    """A procedure starting at `at`, ending `minutes` later when given."""
    details: dict[str, Any] = {"treatment": treatment}
    if treatment is Treatment.UC_MSC_INFUSION:
        details["dose_cells_per_kg"] = 1e5
    if treatment is Treatment.PLASMA_EXCHANGE:
        details["volume_ml"] = 2000.0
    if minutes is not None:
        details["ended_at"] = env.get("at", T0) + timedelta(minutes=minutes)
    return TreatmentAdministered(**envelope(participant_id, **env), payload=details)


def hours_after(hours: float, start: datetime = T0) -> datetime:
    """A clinical time `hours` after `start`."""
    return start + timedelta(hours=hours)


def fired(signals: Sequence[SignalRaised], rule_id: str) -> list[SignalRaised]:
    """The signals one rule raised, in order."""
    return [s for s in signals if s.payload.rule_id == rule_id]


def rule_ids(signals: Sequence[SignalRaised]) -> list[str]:
    """Rule ids of the signals, in order (the SAE family left out)."""
    return [s.payload.rule_id for s in signals if not s.payload.rule_id.startswith("SAE-")]


def corrected(
    participant_id: str,
    target: UUID,
    replacement: dict[str, Any] | None = None,
    *,
    reason: str = "transcription error",
    **env: Any,
) -> FactCorrected:
    """A correction of fact `target` (a retraction when `replacement` is None)."""
    payload = {"supersedes_event_id": target, "reason": reason, "replacement": replacement}
    return FactCorrected(**envelope(participant_id, **env), payload=payload)
