"""Use-cases of the console (app layer): project stream messages, and the views of the pages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.subjects import CONSOLE_FACTS_DURABLE, CONSOLE_NOTIFY_DURABLE, CONSOLE_SIGNALS_DURABLE
from services.console.core import timeline
from services.console.core.access import Viewer
from services.console.core.alerts import Alert, Filters, countdown, fold_alerts, inbox_order
from services.console.core.errors import ForbiddenError, NotFoundError
from services.console.core.events import Event, Source, parse_event
from services.console.core.trail import TrailCheck, verify_trail
from services.console.ports import Change, Changes, Clock, Logger, Projection


@dataclass(frozen=True, slots=True)
class Projector:
    """Project one stream's messages: idempotent by event id, position in the same commit."""

    store: Projection
    changes: Changes
    log: Logger

    async def handle(
        self, source: Source, durable: str, messages: Sequence[tuple[int, bytes]]
    ) -> None:
        """Parse and store a batch; tell live pages what is new."""
        events: list[Event] = []
        for seq, data in messages:
            try:
                events.append(parse_event(source, data))
            except (ValueError, KeyError, TypeError) as exc:
                # Not an event at all: skipped (and logged) rather than blocking the stream.
                self.log.warning(
                    "console_message_unreadable", durable=durable, seq=seq, error=type(exc).__name__
                )
        last = max(seq for seq, _ in messages)
        new = await self.store.apply(durable, events, last)
        if new:
            sites = frozenset(e.site_id for e in new if e.site_id)
            self.changes.publish(Change(frozenset(e.source for e in new), sites))


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One inbox line: the alert and its clock as text."""

    alert: Alert
    clock: str
    overdue: bool


@dataclass(frozen=True, slots=True)
class AlertView:
    """Everything the alert page shows."""

    alert: Alert
    clock: str
    overdue: bool
    evidence: list[Event]
    window: list[Event]
    markers: list[timeline.Marker]
    charts: list[timeline.Series]
    others: list[Alert]


@dataclass(frozen=True, slots=True)
class ParticipantView:
    """Everything the participant page shows."""

    participant_id: str
    site_id: str
    events: list[Event]
    alerts: list[Alert]
    markers: list[timeline.Marker]
    charts: list[timeline.Series]


@dataclass(frozen=True, slots=True)
class AuditView:
    """The audit page: where each durable stands, what is projected, the trail's check."""

    positions: dict[str, int]
    counts: dict[str, int]
    trail: TrailCheck


def _require_reader(viewer: Viewer) -> None:
    if not viewer.reads_alerts:
        raise ForbiddenError(f"role {viewer.role} has no alert pages")


@dataclass(frozen=True, slots=True)
class Views:
    """The pages' reads, with the role and site checks the APIs make."""

    store: Projection
    clock: Clock

    async def _alerts(self, viewer: Viewer, participant_id: str | None = None) -> list[Alert]:
        events = await self.store.events(
            sources=("signal", "notify"), participant_id=participant_id
        )
        return [a for a in fold_alerts(events).values() if viewer.sees(a.site_id)]

    async def inbox(self, viewer: Viewer, filters: Filters) -> list[InboxRow]:
        """The alerts the viewer may see that pass `filters`, open and urgent first."""
        _require_reader(viewer)
        now = self.clock.now()
        alerts = inbox_order(a for a in await self._alerts(viewer) if filters.matches(a))
        return [InboxRow(a, *countdown(a.deadline, now)) for a in alerts]

    async def alert(self, viewer: Viewer, signal_id: str) -> AlertView:
        """One alert; another site's reads as unknown.

        Raises:
            ForbiddenError: the role has no alert pages.
            NotFoundError: no such alert for this viewer.

        """
        _require_reader(viewer)
        found = [a for a in await self._alerts(viewer) if a.signal_id == signal_id]
        if not found:
            raise NotFoundError(f"no alert {signal_id}")
        alert = found[0]
        facts = await self.store.events(sources=("fact",), participant_id=alert.participant_id)
        others = await self._alerts(viewer, alert.participant_id)
        labs = timeline.lab_series(facts)
        evidence = set(alert.evidence)
        return AlertView(
            alert,
            *countdown(alert.deadline, self.clock.now()),
            evidence=[e for e in facts if e.event_id in evidence],
            window=timeline.window(facts, alert.raised_at),
            markers=timeline.markers(facts),
            charts=[*labs, timeline.meld_series(labs)],
            others=inbox_order(a for a in others if a.signal_id != signal_id),
        )

    async def participant(self, viewer: Viewer, participant_id: str) -> ParticipantView:
        """Every fact, signal and notification of one participant, in time order.

        Raises:
            ForbiddenError: the role has no participant pages.
            NotFoundError: no such participant for this viewer (another site's included).

        """
        _require_reader(viewer)
        events = await self.store.events(
            sources=("fact", "signal", "notify"), participant_id=participant_id
        )
        site = next((e.site_id for e in events if e.site_id), None)
        if not events or not viewer.sees(site):
            raise NotFoundError(f"no participant {participant_id}")
        facts = [e for e in events if e.source == "fact"]
        labs = timeline.lab_series(facts)
        return ParticipantView(
            participant_id,
            str(site),
            sorted(events, key=lambda e: e.occurred_at),
            alerts=inbox_order(await self._alerts(viewer, participant_id)),
            markers=timeline.markers(facts),
            charts=[*labs, timeline.meld_series(labs)],
        )


async def audit_view(store: Projection, viewer: Viewer) -> AuditView:
    """The audit page's content (auditor and admin).

    Raises:
        ForbiddenError: another role.

    """
    if not viewer.audits:
        raise ForbiddenError(f"role {viewer.role} has no audit page")
    durables = (CONSOLE_FACTS_DURABLE, CONSOLE_SIGNALS_DURABLE, CONSOLE_NOTIFY_DURABLE)
    positions = {durable: await store.position(durable) for durable in durables}
    notify = await store.events(sources=("notify",))
    return AuditView(positions, await store.counts(), verify_trail(e.body for e in notify))


def idle_expired(last_seen: datetime, now: datetime, idle: timedelta) -> bool:
    """Whether a session unused since `last_seen` has expired."""
    return now - last_seen > idle
