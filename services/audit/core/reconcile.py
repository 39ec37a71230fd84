"""Reconcile signals with the notify audit trail: every notification required, and what happened.

Pure: signals (re-derived from the log), what each requires under the routing in force, and
the trail's entries in; a trace per signal and a list of gaps out (`gaps.py` judges each).
The gaps an inspector asks about are:
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from services.audit.core.gaps import (
    ACK_EVENTS,
    DEFAULT_ACK_WITHIN,
    DEFAULT_LATE_AFTER,
    AnySignal,
    Gap,
    GapKind,
    Policy,
    signal_gaps,
    unknown_gaps,
)
from services.audit.core.journal import JournaledSent, with_journal
from services.audit.core.routing import REPORT_PARTICIPANT, Required
from services.audit.core.trail import TrailEntry

__all__ = [
    "DEFAULT_ACK_WITHIN",
    "DEFAULT_LATE_AFTER",
    "Gap",
    "GapKind",
    "Policy",
    "Reconciliation",
    "ReportTrace",
    "Trace",
    "reconcile",
]
_ALERT_EVENTS: Final = frozenset({"alert_acknowledged", "alert_escalated"})


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
        found = signal_gaps(signal, entries, needed, policy, ack_tracked=ack_tracked)
        gaps.extend(found)
        traces.append(_trace(signal, entries, len(needed), len(found)))
    known = {str(signal.event_id) for signal in signals}
    gaps.extend(unknown_gaps(by_signal, known))
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


def _trace(signal: AnySignal, entries: list[TrailEntry], required: int, gaps: int) -> Trace:
    acks = [e for e in entries if e.event_type in ACK_EVENTS]
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
