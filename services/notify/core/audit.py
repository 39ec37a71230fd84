"""Audit trail of notifications (pure core): the facts recorded and their hash chain.

Every intended, sent and failed notification becomes a fact in the notify service's own
append-only trail. Each entry carries sha256(prev_hash || canonical_bytes(wire)), so an
auditor can verify the whole trail offline and locate any edit, deletion or reordering.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from schemas import (
    GENESIS_HASH,
    AlertAcknowledged,
    AlertEscalated,
    NotificationFailed,
    NotificationIntended,
    NotificationPayload,
    NotificationSent,
    canonical_bytes,
    chain_hash,
)
from services.notify.core.plan import NotificationPlan

AuditFact = (
    NotificationIntended
    | NotificationSent
    | NotificationFailed
    | AlertAcknowledged
    | AlertEscalated
)
SOURCE = "notify"
ACTOR = "safetymon-notify"
_TEXT_LIMIT = 500  # NotificationPayload caps smtp_reply and error at 500 characters


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Position and hash of the last entry; the genesis head before the first."""

    seq: int = 0
    hash: str = GENESIS_HASH


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One chained audit row: the fact's JSON wire form plus its place in the chain."""

    seq: int
    event_id: UUID
    event_type: str
    notification_id: UUID
    signal_id: UUID
    recorded_at: datetime
    wire: str
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """Result of verifying a trail: where it first breaks, if it does."""

    ok: bool
    length: int
    head: str
    bad_seq: int | None = None
    problem: str | None = None


def _envelope(plan: NotificationPlan, step: str, now: datetime) -> dict[str, Any]:
    return {
        "event_id": uuid5(plan.notification_id, step),
        "trial_id": plan.trial_id,
        "site_id": plan.site_id,
        "participant_id": plan.participant_id,
        "occurred_at": now,
        "recorded_at": now,
        "source": SOURCE,
        "source_ref": f"{plan.notification_id}:{step}",
        "actor": ACTOR,
        "causation_id": plan.signal_id,
        "correlation_id": plan.correlation_id,
    }


def _payload(
    plan: NotificationPlan,
    *,
    attempt: int = 0,
    smtp_reply: str | None = None,
    error: str | None = None,
) -> NotificationPayload:
    return NotificationPayload(
        notification_id=plan.notification_id,
        signal_id=plan.signal_id,
        role=plan.role.value,
        address=plan.address,
        urgency=plan.urgency,
        attempt=attempt,
        smtp_reply=smtp_reply,
        error=error,
    )


def intended_fact(plan: NotificationPlan, *, now: datetime) -> NotificationIntended:
    """Record the decision to send, made before any SMTP conversation."""
    return NotificationIntended(**_envelope(plan, "intended", now), payload=_payload(plan))


def sent_fact(
    plan: NotificationPlan, *, attempt: int, smtp_reply: str, now: datetime
) -> NotificationSent:
    """Record that the SMTP server accepted the message on this attempt."""
    payload = _payload(plan, attempt=attempt, smtp_reply=smtp_reply[:_TEXT_LIMIT])
    return NotificationSent(**_envelope(plan, "sent", now), payload=payload)


def failed_fact(
    plan: NotificationPlan, *, attempt: int, error: str, permanent: bool, now: datetime
) -> NotificationFailed:
    """Record a failed attempt; temporary failures are retried, permanent ones are not."""
    payload = _payload(plan, attempt=attempt, error=error[:_TEXT_LIMIT])
    envelope = _envelope(plan, f"failed:{attempt}", now)
    return NotificationFailed(**envelope, payload=payload, permanent=permanent)


def link(head: ChainHead, facts: Sequence[AuditFact]) -> tuple[tuple[AuditEntry, ...], ChainHead]:
    """Chain facts after `head`; returns the entries and the new head."""
    entries: list[AuditEntry] = []
    seq, prev = head.seq, head.hash
    for fact in facts:
        seq += 1
        wire = fact.model_dump(mode="json")
        digest = chain_hash(prev, canonical_bytes(wire))
        chained = {**wire, "seq": seq, "prev_hash": prev, "hash": digest}
        entries.append(_entry(fact, seq=seq, wire=_dumps(chained), prev=prev, digest=digest))
        prev = digest
    return tuple(entries), ChainHead(seq, prev)


def _entry(fact: AuditFact, *, seq: int, wire: str, prev: str, digest: str) -> AuditEntry:
    return AuditEntry(
        seq=seq,
        event_id=fact.event_id,
        event_type=fact.event_type,
        notification_id=_notification_of(fact),
        signal_id=fact.payload.signal_id,
        recorded_at=fact.recorded_at,
        wire=wire,
        prev_hash=prev,
        hash=digest,
    )


def _notification_of(fact: AuditFact) -> UUID:
    # Acknowledgements and escalations concern a signal, not one email: their own event id
    # fills the row's notification column, so the trail's columns stay NOT NULL.
    if isinstance(fact, AlertAcknowledged | AlertEscalated):
        return fact.event_id
    return fact.payload.notification_id


def acknowledged_fact(
    plan: NotificationPlan, *, by: str, reason: str, via: str, now: datetime
) -> AlertAcknowledged:
    """Record who acknowledged the signal of `plan`, when (now) and why.

    `via` names the channel ("link:<notification id>" or "cli"); one acknowledgement per
    signal, so the event id is a function of the signal alone.
    """
    return AlertAcknowledged(
        event_id=uuid5(plan.signal_id, "acknowledged"),
        trial_id=plan.trial_id,
        site_id=plan.site_id,
        participant_id=plan.participant_id,
        occurred_at=now,
        recorded_at=now,
        source=SOURCE,
        source_ref=f"{plan.signal_id}:acknowledged:{via}"[:200],
        actor=by,
        causation_id=plan.signal_id,
        correlation_id=plan.correlation_id,
        payload={"signal_id": plan.signal_id, "by": by, "reason": reason},
    )


def _dumps(wire: dict[str, Any]) -> str:
    return json.dumps(wire, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def verify_chain(entries: Iterable[AuditEntry]) -> ChainCheck:
    """Recompute every hash in seq order; report the first entry that does not verify."""
    seq, prev = 0, GENESIS_HASH
    for entry in entries:
        seq += 1
        problem = _problem(entry, seq=seq, prev=prev)
        if problem is not None:
            return ChainCheck(False, seq - 1, prev, bad_seq=entry.seq, problem=problem)
        prev = entry.hash
    return ChainCheck(ok=True, length=seq, head=prev)


def _problem(entry: AuditEntry, *, seq: int, prev: str) -> str | None:
    if entry.seq != seq:
        return f"expected seq {seq}, found {entry.seq} (an entry is missing or moved)"
    if entry.prev_hash != prev:
        return "prev_hash does not match the previous entry's hash"
    try:
        wire = json.loads(entry.wire)
    except ValueError:
        return "wire form is not JSON"
    if (wire.get("seq"), wire.get("prev_hash"), wire.get("hash")) != (seq, prev, entry.hash):
        return "chain fields inside the wire form differ from the row"
    if chain_hash(prev, canonical_bytes(wire)) != entry.hash:
        return "content does not match its hash (the entry was edited)"
    return None
