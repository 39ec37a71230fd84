"""Notification planning (pure core): what to send to whom about a signal, with stable ids.

Everything here is a function of the signal and the routing file only, so a redelivered
signal plans the same notification ids, subject lines and Message-IDs bit for bit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from uuid import UUID, uuid5

from schemas import Role, SignalRaised, SignalUpdated, Urgency
from services.notify.core.routing import Recipient, Routing, RoutingGap, recipients_for
from services.notify.core.terms import redact_reason, redact_value

AnySignal = SignalRaised | SignalUpdated
#: Template pair for clinical categories without a regulatory clock of their own.
GENERIC_TEMPLATE = "signal"
#: Categories whose email explains a regulatory clock (RULES.md §1: SAE 24 h, SUSAR 7/15 d).
CATEGORY_TEMPLATES: Mapping[str, str] = {"sae": "sae", "death": "sae", "susar": "susar"}
URGENCY_LABELS: Mapping[Urgency, str] = {
    Urgency.U0: "IMMEDIATE",
    Urgency.U1: "review within 24 h",
    Urgency.U2: "daily digest",
    Urgency.U3: "DSMB report",
}
# Any line break or control character, including the Unicode line separators.
_UNSAFE_IN_HEADER = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
# Value names that would identify a person; such values never leave in an email.
_IDENTIFYING = ("name", "birth", "dob", "initials", "mrn", "phone", "email")


@dataclass(frozen=True, slots=True)
class NotificationPlan:
    """One message to one address about one signal, ready to render and send."""

    notification_id: UUID
    signal_id: UUID
    trial_id: str
    site_id: str
    participant_id: str
    role: Role
    address: str
    urgency: Urgency
    subject: str
    message_id: str
    template: str
    context: Mapping[str, Any]
    references: str | None = None
    correlation_id: UUID | None = None
    gaps: tuple[RoutingGap, ...] = ()
    #: U2/U3: the digest this notification goes out in, and not before when.
    digest_key: str | None = None
    not_before: datetime | None = None
    #: A U0 page: "<causing fact id>|<address>" (core/pages.py); None for anything else.
    page_key: str | None = None


def one_line(text: str) -> str:
    """Make text safe for a mail header: no CR, LF or control characters, single spaces."""
    return " ".join(_UNSAFE_IN_HEADER.sub(" ", text).split())


def notification_id_for(signal_id: UUID, role: Role, address: str) -> UUID:
    """Deterministic id of the notification of one signal to one address."""
    return uuid5(signal_id, f"{role.value}:{address}")


def message_id_for(notification_id: UUID) -> str:
    """Deterministic Message-ID header, so mail clients fold any resent duplicate."""
    return f"<{notification_id}@safetymon>"


def _format_utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def subject_line(signal: AnySignal) -> str:
    """Inbox-triage subject: urgency, category, participant, site, title, deadline."""
    payload = signal.payload
    tag = f"{payload.urgency.value} {payload.category.replace('_', ' ').upper()}"
    if isinstance(signal, SignalUpdated):
        tag += " RETRACTED" if signal.status == "retracted" else " UPDATE"
    parts = [f"[{tag}] {signal.participant_id} site {signal.site_id}", payload.title]
    if payload.reporting_deadline is not None:
        label = payload.deadline_label or "report"
        parts.append(f"{label} due {_format_utc(payload.reporting_deadline)}")
    return one_line(" — ".join(parts))


def plan_notifications(
    signal: AnySignal, routing: Routing, *, display_tz: tzinfo | None = None
) -> tuple[NotificationPlan, ...]:
    """Plan one notification per recipient of the signal (see `recipients_for`)."""
    subject = subject_line(signal)
    context = signal_context(signal, display_tz=display_tz)
    return tuple(
        _plan_for(signal, recipient, subject=subject, context=context)
        for recipient in recipients_for(signal, routing)
    )


def _plan_for(
    signal: AnySignal, recipient: Recipient, *, subject: str, context: Mapping[str, Any]
) -> NotificationPlan:
    notification_id = notification_id_for(signal.event_id, recipient.role, recipient.address)
    thread = signal.signal_id if isinstance(signal, SignalUpdated) else _thread_of(signal)
    references = None
    if thread is not None:
        # The Message-ID this recipient got for the first signal: clients thread under it.
        first = notification_id_for(thread, recipient.role, recipient.address)
        references = message_id_for(first)
    return NotificationPlan(
        notification_id=notification_id,
        signal_id=signal.event_id,
        trial_id=signal.trial_id,
        site_id=signal.site_id,
        participant_id=signal.participant_id,
        role=recipient.role,
        address=recipient.address,
        urgency=signal.payload.urgency,
        subject=subject,
        message_id=message_id_for(notification_id),
        template=CATEGORY_TEMPLATES.get(signal.payload.category, GENERIC_TEMPLATE),
        context={**context, "role": recipient.role.value, "notes": _notes(recipient)},
        references=references,
        correlation_id=signal.correlation_id,
        gaps=recipient.gaps,
    )


def _thread_of(signal: SignalRaised) -> UUID | None:
    """The signal a raised signal follows up (an SAE case's first page, `thread_signal_id`).

    The rules name it when a follow-up report updates a case they paged (ICH E2D); a
    malformed id threads nothing rather than failing the notification.
    """
    named = signal.payload.values.get("thread_signal_id")
    if not isinstance(named, str):
        return None
    try:
        return UUID(named)
    except ValueError:
        return None


def _notes(recipient: Recipient) -> list[str]:
    return [gap.note() for gap in recipient.gaps]


def signal_context(signal: AnySignal, *, display_tz: tzinfo | None = None) -> dict[str, Any]:
    """JSON-ready template context: minimum necessary data, participant code only."""
    payload = signal.payload
    values, withheld = _safe_values(payload.values)
    # A reported term is free text typed at a site: only a controlled term leaves by email.
    reason = redact_reason(payload.reason, payload.values)
    return {
        "kind": signal.status if isinstance(signal, SignalUpdated) else "raised",
        "signal_id": str(signal.event_id),
        "urgency": payload.urgency.value,
        "urgency_label": URGENCY_LABELS[payload.urgency],
        "category": payload.category,
        "title": payload.title,
        "participant_id": signal.participant_id,
        "site_id": signal.site_id,
        "arm": payload.arm or "not recorded",
        "rule": f"{payload.rule_id} v{payload.rule_version}",
        "reason": reason,
        "occurred_at": _format_utc(signal.occurred_at),
        "evidence_event_ids": [str(event_id) for event_id in payload.evidence_event_ids],
        "values": values,
        "values_withheld": withheld,
        "deadline": _deadline(signal, display_tz),
    }


def _deadline(signal: AnySignal, display_tz: tzinfo | None) -> dict[str, str] | None:
    due = signal.payload.reporting_deadline
    if due is None:
        return None
    local = f"{due.astimezone(display_tz):%Y-%m-%d %H:%M} {display_tz}" if display_tz else ""
    label = signal.payload.deadline_label or "Reporting deadline"
    return {"label": label, "utc": _format_utc(due), "local": local}


def _safe_values(values: Mapping[str, object]) -> tuple[list[list[str]], int]:
    shown = [
        [name, _format_value(redact_value(name, value))]
        for name, value in sorted(values.items())
        if not any(word in name.lower() for word in _IDENTIFYING)
    ]
    return shown, len(values) - len(shown)


def _format_value(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
