"""Reconcile signals with the notify audit trail: every notification required, and what happened.

Pure: signals (re-derived from the log), what each requires under the routing in force, and
the trail's entries in; a trace per signal and a list of gaps out. The gaps an inspector asks
about are:
- `missing`: the trail has nothing for a required notification (at once when notify handled
  the signal without it; otherwise once the urgency's allowance has passed);
- `unsent`: it was intended (perhaps retried) but never accepted by the SMTP server;
- `late`: it was sent, but later after the signal than its urgency allows;
- `failed_without_failover`: it failed permanently and nothing else about the signal was
  sent after that failure (notify's failover sends a backup copy and an alarm);
- `never_acknowledged`: a U0/U1 signal nobody acknowledged within the allowance. Checked
  only when the trail holds acknowledgement or escalation facts at all, so a trail from a
  notify without acknowledgements is not reported as a wall of gaps;
- `unknown_signal`: the trail notified about a signal the log does not give.

notify also emails DSMB report announcements: their trail entries carry the
report's id (its `ReportIssued` event id) where a signal id goes, and a placeholder
participant (`REPORT_PARTICIPANT`). A `ReportIssued` fact is published by the report
service, not appended to the event log, so a bundle holds nothing to re-derive them from:
they are listed apart (`ReportTrace`: what the trail says was intended, sent and failed)
rather than flagged as `unknown_signal` or judged against a requirement reconcile cannot
know.

An offline bundle may hold notify's sent journal: SMTP acceptances a notify killed before
its outbox commit never wrote to the trail. Such a send counts as sent, at the time the
server accepted it, when the trail holds its intention and no `notification_sent`; the
result says how many sends rest on the journal alone (`journaled`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from schemas import SignalRaised, SignalUpdated, Urgency
from services.audit.core.journal import JournaledSent, with_journal
from services.audit.core.routing import REPORT_PARTICIPANT, Required
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
_ACK_EVENTS: Final = frozenset({"alert_acknowledged"})
_ALERT_EVENTS: Final = frozenset({"alert_acknowledged", "alert_escalated"})


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


@dataclass(frozen=True, slots=True)
class Trace:
    """One signal from its evidence to its acknowledgement."""

    signal_id: str
    kind: str
    rule_id: str
    rule_version: int
    urgency: str
    participant_id: str
    site_id: str
    recorded_at: datetime
    evidence_event_ids: tuple[str, ...]
    required: int
    sent: int
    failed: int
    escalations: int
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    gaps: int


@dataclass(frozen=True, slots=True)
class ReportTrace:
    """One DSMB report announcement as the trail records it (listed, not judged)."""

    report_id: str
    intended: int
    sent: int
    failed: int
    first_sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """Every signal's trace, every gap found, and the report announcements seen."""

    traces: tuple[Trace, ...]
    gaps: tuple[Gap, ...]
    ack_tracked: bool
    reports: tuple[ReportTrace, ...] = ()
    #: Sends counted as sent on the strength of notify's sent journal alone.
    journaled: int = 0

    @property
    def ok(self) -> bool:
        """True when no gap was found."""
        return not self.gaps


def reconcile(
    signals: Sequence[AnySignal],
    trail: Sequence[TrailEntry],
    *,
    required: Callable[[AnySignal], Sequence[Required]],
    policy: Policy,
    journal: Sequence[JournaledSent] = (),
) -> Reconciliation:
    """Trace every signal through the trail and list every gap (see the module docstring)."""
    trail, journaled = with_journal(trail, journal)
    by_signal: dict[str, list[TrailEntry]] = defaultdict(list)
    for entry in trail:
        if entry.signal_id is not None:
            by_signal[entry.signal_id].append(entry)
    report_ids = {
        entry.signal_id
        for entry in trail
        if entry.participant_id == REPORT_PARTICIPANT and entry.signal_id is not None
    }
    # Every entry of an announcement (acknowledgements and escalations of an ad hoc report
    # included) is about the report, not a signal: set them all apart.
    reports = {rid: by_signal.pop(rid) for rid in sorted(report_ids)}
    ack_tracked = any(entry.event_type in _ALERT_EVENTS for entry in trail)
    traces, gaps = [], []
    for signal in signals:
        entries = by_signal.get(str(signal.event_id), [])
        needed = required(signal)
        found = _signal_gaps(signal, entries, needed, policy, ack_tracked=ack_tracked)
        gaps.extend(found)
        traces.append(_trace(signal, entries, len(needed), len(found)))
    known = {str(signal.event_id) for signal in signals}
    gaps.extend(_unknown(by_signal, known))
    announced = tuple(_report_trace(rid, entries) for rid, entries in reports.items())
    return Reconciliation(tuple(traces), tuple(gaps), ack_tracked, announced, journaled)


def _report_trace(report_id: str, entries: list[TrailEntry]) -> ReportTrace:
    sent = [e.recorded_at for e in entries if e.event_type == "notification_sent"]
    return ReportTrace(
        report_id=report_id,
        intended=sum(1 for e in entries if e.event_type == "notification_intended"),
        sent=len(sent),
        failed=sum(1 for e in entries if e.event_type == "notification_failed"),
        first_sent_at=min(sent) if sent else None,
    )


def _signal_gaps(
    signal: AnySignal,
    entries: list[TrailEntry],
    needed: Sequence[Required],
    policy: Policy,
    *,
    ack_tracked: bool,
) -> list[Gap]:
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
    if any(e.event_type in _ACK_EVENTS for e in entries):
        return None
    age = policy.now - signal.recorded_at
    if age <= policy.ack_within:
        return None  # still within its allowance: not a gap yet
    escalations = sum(1 for e in entries if e.event_type == "alert_escalated")
    detail = f"not acknowledged {_span(age)} after the signal ({escalations} escalation(s))"
    return _gap(signal, "never_acknowledged", detail)


def _unknown(by_signal: Mapping[str, list[TrailEntry]], known: set[str]) -> list[Gap]:
    what = "entries about a signal the log does not give"
    return [
        Gap("unknown_signal", signal_id, f"the trail has {len(entries)} {what}")
        for signal_id, entries in by_signal.items()
        if signal_id not in known
    ]


def _trace(signal: AnySignal, entries: list[TrailEntry], required: int, gaps: int) -> Trace:
    acks = [e for e in entries if e.event_type in _ACK_EVENTS]
    payload = signal.payload
    return Trace(
        signal_id=str(signal.event_id),
        kind=signal.event_type,
        rule_id=payload.rule_id,
        rule_version=payload.rule_version,
        urgency=payload.urgency.value,
        participant_id=signal.participant_id,
        site_id=signal.site_id,
        recorded_at=signal.recorded_at,
        evidence_event_ids=tuple(str(e) for e in payload.evidence_event_ids),
        required=required,
        sent=sum(1 for e in entries if e.event_type == "notification_sent"),
        failed=sum(1 for e in entries if e.event_type == "notification_failed"),
        escalations=sum(1 for e in entries if e.event_type == "alert_escalated"),
        acknowledged_at=acks[0].recorded_at if acks else None,
        acknowledged_by=acks[0].actor if acks else None,
        gaps=gaps,
    )


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if abs(seconds) < 120:
        return f"{seconds} s"
    if abs(seconds) < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"
