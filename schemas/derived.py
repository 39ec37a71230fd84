"""Facts the system derives: signals, notifications, acknowledgements, reports."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, FiniteFloat

from schemas._base import ClinicalFact, Code, Contract, Fact, ShortText, UtcDatetime


class Urgency(StrEnum):
    """RULES.md §0.3 urgency levels."""

    U0 = "U0"  # immediate
    U1 = "U1"  # review within 24 h
    U2 = "U2"  # daily digest
    U3 = "U3"  # next DSMB report


class Role(StrEnum):
    """Who a signal is meant for; the routing file maps roles to addresses."""

    INVESTIGATOR = "investigator"
    SAFETY_OFFICER = "safety_officer"
    DSMB_CHAIR = "dsmb_chair"
    DSMB = "dsmb"
    BACKUP = "backup"


class SignalPayload(Contract):
    """Why a rule fired: enough for a safety officer to act, no PHI."""

    rule_id: Code
    rule_version: Annotated[int, Field(ge=1)]
    category: Code = Field(description="Rule family, e.g. 'sae', 'death', 'susar'.")
    title: ShortText
    urgency: Urgency
    recipients: tuple[Role, ...] = Field(min_length=1)
    arm: Code | None = None
    reason: Annotated[str, Field(min_length=1, max_length=1000)]
    evidence_event_ids: tuple[UUID, ...] = Field(min_length=1)
    values: dict[str, str | FiniteFloat | int | bool | None] = Field(default_factory=dict)
    reporting_deadline: UtcDatetime | None = None
    deadline_label: ShortText | None = None


class SignalRaised(ClinicalFact):
    """A rule fired for a participant; event_id is deterministic (rule, participant, triggers)."""

    event_type: Literal["signal_raised"] = "signal_raised"
    payload: SignalPayload


class SignalUpdated(ClinicalFact):
    """A raised signal escalated, changed, or was retracted (then notify says so)."""

    event_type: Literal["signal_updated"] = "signal_updated"
    payload: SignalPayload
    signal_id: UUID
    status: Literal["updated", "retracted"]


class NotificationPayload(Contract):
    """One message to one recipient about one signal."""

    notification_id: UUID
    signal_id: UUID
    role: Role
    address: Annotated[str, Field(min_length=3, max_length=254)]
    urgency: Urgency
    smtp_reply: Annotated[str, Field(max_length=500)] | None = None
    error: Annotated[str, Field(max_length=500)] | None = None
    attempt: Annotated[int, Field(ge=0)] = 0


class NotificationIntended(Fact):
    """Notify decided to send a message (recorded before the SMTP conversation)."""

    event_type: Literal["notification_intended"] = "notification_intended"
    payload: NotificationPayload


class NotificationSent(Fact):
    """The SMTP server accepted the message; smtp_reply holds its answer."""

    event_type: Literal["notification_sent"] = "notification_sent"
    payload: NotificationPayload


class NotificationFailed(Fact):
    """A send attempt failed; `error` says why; a temporary failure is retried."""

    event_type: Literal["notification_failed"] = "notification_failed"
    payload: NotificationPayload
    permanent: bool


class AlertAcknowledgedPayload(Contract):
    """Who acknowledged which signal and why."""

    signal_id: UUID
    by: ShortText
    reason: ShortText


class AlertAcknowledged(Fact):
    """Someone took responsibility for a signal."""

    event_type: Literal["alert_acknowledged"] = "alert_acknowledged"
    payload: AlertAcknowledgedPayload


class AlertEscalatedPayload(Contract):
    """An unacknowledged signal went to the next level."""

    signal_id: UUID
    level: Annotated[int, Field(ge=1)]
    to_roles: tuple[Role, ...] = Field(min_length=1)


class AlertEscalated(Fact):
    """A signal was escalated because nobody acknowledged it in time."""

    event_type: Literal["alert_escalated"] = "alert_escalated"
    payload: AlertEscalatedPayload


class ReportIssuedPayload(Contract):
    """A DSMB report built from a log position."""

    report_kind: Code
    log_position: Annotated[int, Field(ge=0)]
    chain_head: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    files_sha256: dict[str, Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]]
    numbers: dict[str, FiniteFloat] = Field(default_factory=dict)


class ReportIssued(Fact):
    """A periodic or ad hoc report was issued."""

    event_type: Literal["report_issued"] = "report_issued"
    payload: ReportIssuedPayload


DERIVED_FACTS: tuple[type[Fact], ...] = (
    SignalRaised,
    SignalUpdated,
    NotificationIntended,
    NotificationSent,
    NotificationFailed,
    AlertAcknowledged,
    AlertEscalated,
    ReportIssued,
)
