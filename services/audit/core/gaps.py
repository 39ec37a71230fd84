"""What reconcile flags (pure): the gaps of one signal's deliveries and acknowledgement.

The allowances (`Policy`) and the judgment of each required notification against the trail:
`missing`, `unsent`, `late`, `failed_without_failover`, `never_acknowledged`, and
`unknown_signal` for trail entries about a signal the log does not give. `reconcile.py` has
the reasons behind each kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from schemas import SignalRaised, SignalUpdated, Urgency
from services.audit.core.routing import Required
from services.audit.core.trail import TrailEntry

GapKind = Literal[
    "missing", "unsent", "late", "failed_without_failover", "never_acknowledged", "unknown_signal"
]


AnySignal = SignalRaised | SignalUpdated


#: How long after the system learned a fact its notification may take (RULES.md §0.3:
#: U0 immediate, U1 review within 24 h; notify sends U1-U3 at once as well for now).
DEFAULT_LATE_AFTER: Final = {
    Urgency.U0: timedelta(minutes=15),
    Urgency.U1: timedelta(hours=1),
    Urgency.U2: timedelta(hours=24),
    Urgency.U3: timedelta(days=7),
}


#: notify escalates an unacknowledged U0 after 60 min by default (its escalation_minutes).
DEFAULT_ACK_WITHIN: Final = timedelta(minutes=60)


ACK_EVENTS: Final = frozenset({"alert_acknowledged"})


@dataclass(frozen=True, slots=True)
class Policy:
    """The allowances reconcile judges by, and the moment it judges at."""

    now: datetime
    late_after: Mapping[Urgency, timedelta] = field(default_factory=lambda: DEFAULT_LATE_AFTER)
    ack_within: timedelta = DEFAULT_ACK_WITHIN


@dataclass(frozen=True, slots=True)
class Gap:
    """One thing an inspector would flag, located by signal (and notification)."""

    kind: GapKind
    signal_id: str
    detail: str
    rule_id: str | None = None
    participant_id: str | None = None
    urgency: str | None = None
    notification_id: str | None = None
    role: str | None = None
    address: str | None = None


def signal_gaps(
    signal: AnySignal,
    entries: list[TrailEntry],
    needed: Sequence[Required],
    policy: Policy,
    *,
    ack_tracked: bool,
) -> list[Gap]:
    """The gaps of one signal: each required notification's delivery, then its acknowledgement."""
    gaps = [gap for need in needed if (gap := _delivery_gap(signal, need, entries, policy))]
    if ack_tracked and _needs_ack(signal) and needed:
        gap = _ack_gap(signal, entries, policy)
        if gap is not None:
            gaps.append(gap)
    return gaps


def _gap(signal: AnySignal, kind: GapKind, detail: str, need: Required | None = None) -> Gap:
    return Gap(
        kind=kind,
        signal_id=str(signal.event_id),
        detail=detail,
        rule_id=signal.payload.rule_id,
        participant_id=signal.participant_id,
        urgency=signal.payload.urgency.value,
        notification_id=None if need is None else need.notification_id,
        role=None if need is None else need.role,
        address=None if need is None else need.address,
    )


def _delivery_gap(
    signal: AnySignal, need: Required, entries: list[TrailEntry], policy: Policy
) -> Gap | None:
    mine = [e for e in entries if e.notification_id == need.notification_id]
    sent = [e for e in mine if e.event_type == "notification_sent"]
    allowed = policy.late_after.get(signal.payload.urgency, timedelta.max)
    if sent:
        delay = sent[0].recorded_at - signal.recorded_at
        if delay <= allowed:
            return None
        detail = f"sent {_span(delay)} after the signal; {signal.payload.urgency} allows "
        return _gap(signal, "late", detail + _span(allowed), need)
    if not mine and entries:
        # notify plans every notification of a signal in one transaction: it handled this
        # signal and left this one out, so waiting longer will not bring it.
        detail = f"notify handled the signal without a {need.role} notification to {need.address}"
        return _gap(signal, "missing", detail, need)
    if policy.now - signal.recorded_at <= allowed:
        return None  # not sent yet, but still within its allowance: pending, not a gap
    if not mine:
        detail = f"no {need.role} notification to {need.address} in the trail"
        return _gap(signal, "missing", detail, need)
    return _undelivered(signal, need, mine, entries)


def _undelivered(
    signal: AnySignal, need: Required, mine: list[TrailEntry], entries: list[TrailEntry]
) -> Gap | None:
    failures = [e for e in mine if e.event_type == "notification_failed" and e.permanent]
    if not failures:
        return _gap(signal, "unsent", "intended but never accepted by the SMTP server", need)
    failed_at = failures[0].recorded_at
    followed = any(
        e.event_type == "notification_sent"
        and e.notification_id != need.notification_id
        and e.recorded_at >= failed_at
        for e in entries
    )
    if followed:
        return None
    detail = "failed permanently and nothing else about the signal was sent after it"
    return _gap(signal, "failed_without_failover", detail, need)


def _needs_ack(signal: AnySignal) -> bool:
    retracted = isinstance(signal, SignalUpdated) and signal.status == "retracted"
    return not retracted and signal.payload.urgency in {Urgency.U0, Urgency.U1}


def _ack_gap(signal: AnySignal, entries: list[TrailEntry], policy: Policy) -> Gap | None:
    if any(e.event_type in ACK_EVENTS for e in entries):
        return None
    age = policy.now - signal.recorded_at
    if age <= policy.ack_within:
        return None  # still within its allowance: not a gap yet
    escalations = sum(1 for e in entries if e.event_type == "alert_escalated")
    detail = f"not acknowledged {_span(age)} after the signal ({escalations} escalation(s))"
    return _gap(signal, "never_acknowledged", detail)


def unknown_gaps(by_signal: Mapping[str, list[TrailEntry]], known: set[str]) -> list[Gap]:
    """One `unknown_signal` gap per signal the trail has entries about but the log does not give."""
    what = "entries about a signal the log does not give"
    return [
        Gap("unknown_signal", signal_id, f"the trail has {len(entries)} {what}")
        for signal_id, entries in by_signal.items()
        if signal_id not in known
    ]


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if abs(seconds) < 120:
        return f"{seconds} s"
    if abs(seconds) < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"
