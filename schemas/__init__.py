"""Event contracts of safetymon: pydantic models only; imports nothing of ours."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, TypeAdapter

from schemas._base import ClinicalFact, Contract, Fact
from schemas.canonical import GENESIS_HASH, canonical_bytes, chain_hash
from schemas.derived import (
    DERIVED_FACTS,
    AlertAcknowledged,
    AlertEscalated,
    NotificationFailed,
    NotificationIntended,
    NotificationPayload,
    NotificationSent,
    ReportIssued,
    Role,
    SignalPayload,
    SignalRaised,
    SignalUpdated,
    Urgency,
)
from schemas.facts import (
    ARRIVING_FACTS,
    SYSTEM_FACTS,
    AdverseEventPayload,
    AdverseEventReported,
    AdverseEventUpdated,
    Arm,
    Causality,
    ClinicalAssessmentRecorded,
    ClockTicked,
    DeathRecorded,
    Expectedness,
    FactCorrected,
    LabResultRecorded,
    Organism,
    Outcome,
    ParticipantEnrolled,
    ParticipantWithdrawn,
    Quantity,
    SAEReportedToSponsor,
    SeriousnessCriterion,
    Submission,
    SUSARReportedToAuthority,
    Treatment,
    TreatmentAdministered,
    VitalSignsRecorded,
)
from schemas.subjects import (
    DUPLICATE_WINDOW_SECONDS,
    NOTIFY_DURABLE,
    RULES_DURABLE,
    URGENT_EVENT_TYPES,
    Subjects,
)

ArrivingFact = Annotated[
    ParticipantEnrolled
    | TreatmentAdministered
    | LabResultRecorded
    | VitalSignsRecorded
    | ClinicalAssessmentRecorded
    | AdverseEventReported
    | AdverseEventUpdated
    | ParticipantWithdrawn
    | DeathRecorded
    | SAEReportedToSponsor
    | SUSARReportedToAuthority
    | FactCorrected,
    Field(discriminator="event_type"),
]
#: What the facts stream carries: arriving facts and the log's own clock ticks.
LoggedFact = Annotated[
    ParticipantEnrolled
    | TreatmentAdministered
    | LabResultRecorded
    | VitalSignsRecorded
    | ClinicalAssessmentRecorded
    | AdverseEventReported
    | AdverseEventUpdated
    | ParticipantWithdrawn
    | DeathRecorded
    | SAEReportedToSponsor
    | SUSARReportedToAuthority
    | FactCorrected
    | ClockTicked,
    Field(discriminator="event_type"),
]
AnySignal = Annotated[SignalRaised | SignalUpdated, Field(discriminator="event_type")]

#: Decode a fact from the facts stream; the only place arriving facts are parsed.
FACT_ADAPTER: TypeAdapter[ArrivingFact] = TypeAdapter(ArrivingFact)
#: Decode anything on the facts stream, clock ticks included (the rules service's edge).
LOG_FACT_ADAPTER: TypeAdapter[LoggedFact] = TypeAdapter(LoggedFact)
#: Decode a signal from the signals stream.
SIGNAL_ADAPTER: TypeAdapter[AnySignal] = TypeAdapter(AnySignal)
#: Every fact type by its event_type, for schema export and tests.
ALL_FACTS: dict[str, type[Fact]] = {
    model.model_fields["event_type"].default: model
    for model in (*ARRIVING_FACTS, *SYSTEM_FACTS, *DERIVED_FACTS)
}

__all__ = [
    "ALL_FACTS",
    "ARRIVING_FACTS",
    "DERIVED_FACTS",
    "DUPLICATE_WINDOW_SECONDS",
    "FACT_ADAPTER",
    "GENESIS_HASH",
    "LOG_FACT_ADAPTER",
    "NOTIFY_DURABLE",
    "RULES_DURABLE",
    "SIGNAL_ADAPTER",
    "SYSTEM_FACTS",
    "URGENT_EVENT_TYPES",
    "AdverseEventPayload",
    "AdverseEventReported",
    "AdverseEventUpdated",
    "AlertAcknowledged",
    "AlertEscalated",
    "AnySignal",
    "Arm",
    "ArrivingFact",
    "Causality",
    "ClinicalAssessmentRecorded",
    "ClinicalFact",
    "ClockTicked",
    "Contract",
    "DeathRecorded",
    "Expectedness",
    "Fact",
    "FactCorrected",
    "LabResultRecorded",
    "LoggedFact",
    "NotificationFailed",
    "NotificationIntended",
    "NotificationPayload",
    "NotificationSent",
    "Organism",
    "Outcome",
    "ParticipantEnrolled",
    "ParticipantWithdrawn",
    "Quantity",
    "ReportIssued",
    "Role",
    "SAEReportedToSponsor",
    "SUSARReportedToAuthority",
    "SeriousnessCriterion",
    "SignalPayload",
    "SignalRaised",
    "SignalUpdated",
    "Subjects",
    "Submission",
    "Treatment",
    "TreatmentAdministered",
    "Urgency",
    "VitalSignsRecorded",
    "canonical_bytes",
    "chain_hash",
]
