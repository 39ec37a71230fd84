"""Use-case of the notify service (app layer): record the DSMB emails of issued reports.

`ReportIntake` plans the emails of a batch of `ReportIssued` facts and records them with the
consumer's tracking rows and audit facts in one transaction, through the same outbox as
signals, so they are retried, chained in the audit trail and listed by
`safetymon notifications --signal <report id>`. The report id is the tracking key, so a
redelivered or republished announcement adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from schemas import ReportIssued
from services.notify.core import audit
from services.notify.core.report import plan_report, route_for
from services.notify.core.routing import Routing
from services.notify.ports import (
    Clock,
    DeadLetter,
    IntakeBatch,
    IntakeResult,
    Logger,
    NotificationStore,
    SignalNotifications,
)


@dataclass(frozen=True, slots=True)
class ReportIntake:
    """Plan and record the DSMB emails of a batch of issued reports (one transaction)."""

    store: NotificationStore
    routing: Routing
    clock: Clock
    log: Logger
    consumer: str
    reports_base_url: str | None = None
    on_recorded: Callable[[], None] = lambda: None

    async def __call__(
        self, reports: Sequence[ReportIssued], dead_letters: Sequence[DeadLetter] = ()
    ) -> IntakeResult:
        """Record the batch; wake the sender when something new is to be sent."""
        now = self.clock.now()
        items = tuple(self._plan(report, now) for report in reports)
        result = await self.store.record_intake(
            IntakeBatch(self.consumer, now, items, tuple(dead_letters))
        )
        if result.notifications:
            self.on_recorded()
        new = set(result.new_signals)
        for report, item in zip(reports, items, strict=True):
            if report.event_id in new:
                new.discard(report.event_id)  # a repeat later in the batch is a duplicate
                self.log.info(
                    "report_notifications_intended", report_id=str(report.event_id),
                    report_kind=report.payload.report_kind, count=len(item.plans),
                )  # fmt: skip
        for report_id in result.duplicates:
            self.log.info("report_duplicate_skipped", report_id=str(report_id))
        return result

    def _plan(self, report: ReportIssued, now: datetime) -> SignalNotifications:
        plans = plan_report(report, self.routing, reports_base_url=self.reports_base_url)
        facts = tuple(audit.intended_fact(plan, now=now) for plan in plans)
        wants_ack = route_for(report.payload.report_kind).wants_ack
        return SignalNotifications(report.event_id, plans, facts, wants_ack)
