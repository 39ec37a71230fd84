"""Facts that arrive from sources: enrolment, treatment, labs, vitals, assessments, AEs."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import Field, FiniteFloat, model_validator

from schemas._base import ClinicalFact, Code, Contract, Fact, ShortText, UtcDatetime


class Arm(StrEnum):
    """Randomised arms of NCT01724398."""

    CONVENTIONAL = "A"
    UC_MSC = "B"
    PLASMA_EXCHANGE = "C"
    UC_MSC_AND_PLASMA_EXCHANGE = "D"


class Treatment(StrEnum):
    """Protocol procedures and the treatments the rules need to see."""

    UC_MSC_INFUSION = "uc_msc_infusion"
    PLASMA_EXCHANGE = "plasma_exchange"
    RBC_TRANSFUSION = "rbc_transfusion"
    RENAL_REPLACEMENT = "renal_replacement_therapy"
    VASOPRESSOR = "vasopressor"
    LIVER_TRANSPLANT = "liver_transplant"


class SeriousnessCriterion(StrEnum):
    """ICH E2A seriousness criteria."""

    DEATH = "death"
    LIFE_THREATENING = "life_threatening"
    HOSPITALISATION = "hospitalisation"
    PROLONGED_HOSPITALISATION = "prolonged_hospitalisation"
    DISABILITY = "disability"
    CONGENITAL_ANOMALY = "congenital_anomaly"
    IMPORTANT_MEDICAL_EVENT = "important_medical_event"


class Causality(StrEnum):
    """Investigator's causality assessment against one product or procedure."""

    NOT_RELATED = "not_related"
    UNLIKELY = "unlikely"
    POSSIBLE = "possible"
    PROBABLE = "probable"
    DEFINITE = "definite"
    NOT_APPLICABLE = "not_applicable"


class Expectedness(StrEnum):
    """Expectedness against the reference safety information (UC-MSC IB)."""

    EXPECTED = "expected"
    UNEXPECTED = "unexpected"
    UNKNOWN = "unknown"


class Outcome(StrEnum):
    """AE outcome (CDISC AEOUT vocabulary, lower-cased)."""

    RECOVERED = "recovered"
    RECOVERING = "recovering"
    NOT_RECOVERED = "not_recovered"
    RECOVERED_WITH_SEQUELAE = "recovered_with_sequelae"
    FATAL = "fatal"
    UNKNOWN = "unknown"


class Quantity(Contract):
    """A measured value as sent, with the normalised value ingest adds beside it."""

    value: FiniteFloat
    unit: Annotated[str, Field(min_length=1, max_length=32)]
    comparator: Literal["<", "<=", ">", ">="] | None = None
    normalised_value: FiniteFloat | None = Field(
        default=None, description="Set by ingest: the value in the canonical unit."
    )
    normalised_unit: str | None = Field(default=None, description="Set by ingest.")


def _absent(value: object) -> bool:
    # Fields added within v1 are left out of the wire form when unset, so the canonical bytes
    # (and hash) of every fact written before they existed stay exactly as they were.
    return value is None


class ReportedTime(Contract):
    """A date or time as the source reported it, and how `occurred_at` was completed from it.

    Sources such as CDISC SDTM send ISO 8601 values that may be partial (`2010-06`, `2003`)
    and carry no time zone. The fact keeps the value as reported beside the completed instant,
    so nobody mistakes an imputed day or time for a recorded one.
    """

    as_reported: Annotated[
        str,
        Field(
            pattern=r"^\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?)?)?"
            r"(Z|[+-]\d{2}:\d{2})?$"
        ),
    ]
    precision: Literal["year", "month", "day", "hour", "minute", "second"]
    imputation: Literal["none", "start_of_period"] = Field(
        description="start_of_period: missing month, day and time were set to the first "
        "possible value (month 01, day 01, 00:00:00)."
    )
    timezone_assumed: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="IANA zone the value was read in when it had no offset."
    )


class ParticipantEnrolledPayload(Contract):
    """Randomisation of a participant; occurred_at is the randomisation time."""

    arm: Arm
    baseline_meld: Annotated[int, Field(ge=6, le=40)] | None = None
    sex: Literal["F", "M"] | None = Field(default=None, description="For MELD 3.0 only.")
    occurred_at_as_reported: ReportedTime | None = Field(
        default=None,
        exclude_if=_absent,
        description="occurred_at as the source reported it (may be partial).",
    )


class TreatmentAdministeredPayload(Contract):
    """A procedure or treatment; occurred_at is its start."""

    treatment: Treatment
    ended_at: UtcDatetime | None = None
    sequence_number: Annotated[int, Field(ge=1, le=99)] | None = None
    dose_cells_per_kg: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    volume_ml: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    replacement_fluid: Literal["ffp", "albumin", "ffp_albumin", "other"] | None = None
    occurred_at_as_reported: ReportedTime | None = Field(
        default=None,
        exclude_if=_absent,
        description="occurred_at as the source reported it (may be partial).",
    )

    @model_validator(mode="after")
    def _procedure_details_present(self) -> Self:
        if self.treatment is Treatment.UC_MSC_INFUSION and self.dose_cells_per_kg is None:
            msg = "dose_cells_per_kg is required for a UC-MSC infusion"
            raise ValueError(msg)
        if self.treatment is Treatment.PLASMA_EXCHANGE and self.volume_ml is None:
            msg = "volume_ml is required for a plasma exchange"
            raise ValueError(msg)
        return self


class Organism(Contract):
    """A coded organism grown in a culture (SNOMED CT concept; display is the coded term)."""

    code: Annotated[str, Field(pattern=r"^\d{6,18}$")] = Field(description="SNOMED CT concept id.")
    display: ShortText | None = Field(default=None, description="The code's display term.")


class LabResultRecordedPayload(Contract):
    """A laboratory result; occurred_at is the specimen collection time."""

    loinc: Annotated[str, Field(pattern=r"^\d{1,7}-\d$")]
    result: Quantity
    reference_low: FiniteFloat | None = Field(default=None, description="In result.unit.")
    reference_high: FiniteFloat | None = Field(default=None, description="In result.unit.")
    normalised_reference_low: FiniteFloat | None = Field(
        default=None, description="Set by ingest: reference_low in the canonical unit."
    )
    normalised_reference_high: FiniteFloat | None = Field(
        default=None, description="Set by ingest: reference_high in the canonical unit."
    )
    specimen: Literal["serum", "plasma", "blood", "ascitic_fluid", "urine", "other"] = "serum"
    organism: Organism | None = Field(
        default=None,
        exclude_if=_absent,
        description="A culture's organism, coded (e.g. FHIR valueCodeableConcept). Growth is "
        "result.value 1 (unit '1'); no growth is 0.",
    )
    occurred_at_as_reported: ReportedTime | None = Field(
        default=None,
        exclude_if=_absent,
        description="occurred_at as the source reported it (may be partial).",
    )


VitalSign = Literal[
    "temperature",
    "heart_rate",
    "respiratory_rate",
    "systolic_bp",
    "diastolic_bp",
    "mean_arterial_pressure",
    "spo2",
    "gcs",
    "urine_output",
]


class VitalSignsRecordedPayload(Contract):
    """One set of vital signs taken together; occurred_at is the observation time."""

    observations: dict[VitalSign, Quantity] = Field(min_length=1)
    occurred_at_as_reported: ReportedTime | None = Field(
        default=None,
        exclude_if=_absent,
        description="occurred_at as the source reported it (may be partial).",
    )


class ClinicalAssessmentRecordedPayload(Contract):
    """A bedside assessment: West Haven grade and ascites."""

    west_haven_grade: Annotated[int, Field(ge=0, le=4)] | None = None
    ascites: Literal["none", "mild", "moderate", "severe"] | None = None

    @model_validator(mode="after")
    def _something_assessed(self) -> Self:
        if self.west_haven_grade is None and self.ascites is None:
            msg = "at least one of west_haven_grade or ascites is required"
            raise ValueError(msg)
        return self


class AdverseEventPayload(Contract):
    """Current state of one AE; occurred_at is onset. Updates carry the full state again."""

    ae_ref: Code = Field(description="The AE's id at the site; stable across updates.")
    case_id: Code | None = Field(
        default=None,
        exclude_if=_absent,
        description="Case identity shared by an initial report and its follow-up records "
        "(SDTM AESPID/AEGRPID, FHIR AdverseEvent.identifier, a mapped CSV column): records "
        "of one case are one case (ICH E2D), whatever their ae_ref.",
    )
    term: ShortText = Field(description="Reported term (no narrative, no identifiers).")
    meddra_llt_code: Annotated[str, Field(pattern=r"^\d{8}$")] | None = None
    ctcae_grade: Annotated[int, Field(ge=1, le=5)]
    seriousness_criteria: tuple[SeriousnessCriterion, ...] = ()
    planned_admission_for_procedure: bool = Field(
        default=False, description="Admission planned for UC-MSC/PE: not an SAE (SAE-01)."
    )
    relatedness_uc_msc: Causality = Causality.NOT_APPLICABLE
    relatedness_plasma_exchange: Causality = Causality.NOT_APPLICABLE
    expectedness: Expectedness = Expectedness.UNKNOWN
    outcome: Outcome = Outcome.UNKNOWN
    awareness_at: UtcDatetime | None = Field(
        default=None, description="Investigator first aware; starts the 24 h clock."
    )
    occurred_at_as_reported: ReportedTime | None = Field(
        default=None,
        exclude_if=_absent,
        description="occurred_at as the source reported it (may be partial).",
    )
    ended_as_reported: ReportedTime | None = Field(
        default=None,
        exclude_if=_absent,
        description="End date as the source reported it (may be partial).",
    )
    severity: Literal["mild", "moderate", "severe"] | None = Field(
        default=None,
        exclude_if=_absent,
        description="Severity as reported (e.g. SDTM AESEV), when it was.",
    )
    ctcae_grade_source: Literal["from_severity"] | None = Field(
        default=None,
        exclude_if=_absent,
        description="None: the source reported the grade. from_severity: it gave none, and "
        "mild, moderate and severe were read as grades 1, 2 and 3.",
    )


class ParticipantWithdrawnPayload(Contract):
    """Withdrawal from the trial (a category, never free text)."""

    reason: Literal["consent_withdrawn", "investigator_decision", "lost_to_follow_up", "other"]


class DeathRecordedPayload(Contract):
    """A death; occurred_at is the time of death."""

    cause_category: Literal["liver_failure", "infection", "bleeding", "other", "unknown"]
    related_ae_ref: Code | None = None
    occurred_at_as_reported: ReportedTime | None = Field(
        default=None,
        exclude_if=_absent,
        description="occurred_at as the source reported it (may be partial, e.g. DM DTHDTC).",
    )


class SAEReportedToSponsorPayload(Contract):
    """The investigator's SAE report reached the sponsor (stops the SAE-02 clock)."""

    ae_ref: Code


class SUSARReportedToAuthorityPayload(Contract):
    """The sponsor reported a SUSAR to the regulator (closes SUSAR-01's 7/15-day clocks).

    `initial` closes the 7-day clock of a fatal or life-threatening SUSAR; `complete` closes
    the 15-day clock (and the 7-day one, if it is still open).
    """

    ae_ref: Code
    report: Literal["initial", "complete"] = "complete"


class FactCorrectedPayload(Contract):
    """Supersede an earlier fact: a replacement payload, or none to retract it."""

    supersedes_event_id: UUID
    reason: ShortText
    replacement: dict[str, object] | None = Field(
        default=None, description="The corrected payload, validated as the superseded type's."
    )


class ParticipantEnrolled(ClinicalFact):
    """A participant was randomised to an arm."""

    event_type: Literal["participant_enrolled"] = "participant_enrolled"
    payload: ParticipantEnrolledPayload


class TreatmentAdministered(ClinicalFact):
    """A UC-MSC infusion, plasma exchange or other treatment was given."""

    event_type: Literal["treatment_administered"] = "treatment_administered"
    payload: TreatmentAdministeredPayload


class LabResultRecorded(ClinicalFact):
    """A laboratory result was reported."""

    event_type: Literal["lab_result_recorded"] = "lab_result_recorded"
    payload: LabResultRecordedPayload


class VitalSignsRecorded(ClinicalFact):
    """Vital signs were taken."""

    event_type: Literal["vital_signs_recorded"] = "vital_signs_recorded"
    payload: VitalSignsRecordedPayload


class ClinicalAssessmentRecorded(ClinicalFact):
    """A clinical assessment (West Haven, ascites) was made."""

    event_type: Literal["clinical_assessment_recorded"] = "clinical_assessment_recorded"
    payload: ClinicalAssessmentRecordedPayload


class AdverseEventReported(ClinicalFact):
    """An adverse event was first reported."""

    event_type: Literal["adverse_event_reported"] = "adverse_event_reported"
    payload: AdverseEventPayload


class AdverseEventUpdated(ClinicalFact):
    """A reported adverse event changed (grade, seriousness, causality, outcome)."""

    event_type: Literal["adverse_event_updated"] = "adverse_event_updated"
    payload: AdverseEventPayload


class ParticipantWithdrawn(ClinicalFact):
    """A participant left the trial."""

    event_type: Literal["participant_withdrawn"] = "participant_withdrawn"
    payload: ParticipantWithdrawnPayload


class DeathRecorded(ClinicalFact):
    """A participant died."""

    event_type: Literal["death_recorded"] = "death_recorded"
    payload: DeathRecordedPayload


class SAEReportedToSponsor(ClinicalFact):
    """An SAE report was sent to the sponsor."""

    event_type: Literal["sae_reported_to_sponsor"] = "sae_reported_to_sponsor"
    payload: SAEReportedToSponsorPayload


class SUSARReportedToAuthority(ClinicalFact):
    """The sponsor reported a SUSAR to the regulator; occurred_at is when it was sent."""

    event_type: Literal["susar_reported_to_authority"] = "susar_reported_to_authority"
    payload: SUSARReportedToAuthorityPayload


class FactCorrected(ClinicalFact):
    """An earlier fact was corrected or retracted (who: actor; when: recorded_at; why: reason)."""

    event_type: Literal["fact_corrected"] = "fact_corrected"
    payload: FactCorrectedPayload


class ClockTickedPayload(Contract):
    """Time passed: the ingest service's clock reached `occurred_at` (issue 3, SAE-02)."""

    period_seconds: Annotated[int, Field(ge=1, le=86400)] = Field(
        description="The configured tick period; ticks are appended at most this far apart."
    )


class ClockTicked(Fact):
    """The log's own clock advanced, for one trial (no participant, no site).

    Rules are pure and read time only from facts (DESIGN.md principle 2), so reporting
    clocks such as SAE-02's 24 h are driven by these ticks: the ingest service appends one
    per trial every period, and a replay of the log replays the same ticks. Only ingest
    writes them; they are not a submission type.
    """

    event_type: Literal["clock_ticked"] = "clock_ticked"
    payload: ClockTickedPayload


#: Facts the system appends to the log itself (not accepted from sources).
SYSTEM_FACTS: tuple[type[Fact], ...] = (ClockTicked,)


ARRIVING_FACTS: tuple[type[ClinicalFact], ...] = (
    ParticipantEnrolled,
    TreatmentAdministered,
    LabResultRecorded,
    VitalSignsRecorded,
    ClinicalAssessmentRecorded,
    AdverseEventReported,
    AdverseEventUpdated,
    ParticipantWithdrawn,
    DeathRecorded,
    SAEReportedToSponsor,
    SUSARReportedToAuthority,
    FactCorrected,
)


class Submission(Contract):
    """What a source sends: a fact without the fields ingest assigns.

    Ingest derives `event_id` from (source, source_ref), stamps `recorded_at` and `actor`,
    normalises units, and validates `payload` against the type named by `event_type`.
    """

    event_type: Annotated[str, Field(min_length=1, max_length=64)]
    schema_version: int = 1
    trial_id: Code
    site_id: Code
    participant_id: Code
    occurred_at: UtcDatetime
    source: Code
    source_ref: Annotated[str, Field(min_length=1, max_length=200)]
    causation_id: UUID | None = None
    correlation_id: UUID | None = None
    payload: dict[str, object]
