"""Use-cases of the notify service (app layer): record intended notifications, then send them.

`SignalIntake` turns a batch of signals into intended notifications recorded in one
transaction with the consumer's tracking rows, then wakes the `Sender`. The `Sender` sends
every intended, unconfirmed notification, U0 first, over one SMTP session per burst, and
records each outcome; on start it sends whatever a previous process left unconfirmed.

The 250 reply is written to the sent journal before anything else awaits, then committed
to the outbox. A row a previous process left "in doubt" (handed to the server, no outcome)
whose 250 the journal kept is recorded as sent from the journal, never sent again; only a
row without a journal entry (a crash before the 250 arrived) is resent.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from uuid import UUID

from schemas import SignalRaised, SignalUpdated, Urgency
from services.notify.core import audit, pages
from services.notify.core.digest import DigestSchedule, digest_plan, into_digest
from services.notify.core.errors import MailServerUnavailableError, NotifyError, PermanentError
from services.notify.core.plan import NotificationPlan, plan_notifications
from services.notify.core.retry import DEFAULT_BASE_SECONDS, DEFAULT_CAP_SECONDS, retry_delay
from services.notify.core.routing import Routing
from services.notify.ports import (
    AttemptOutcome,
    Clock,
    DeadLetter,
    IntakeBatch,
    IntakeResult,
    JournaledSend,
    Logger,
    Mailer,
    MailSession,
    NotificationStore,
    OutcomeKind,
    OutgoingMail,
    Pending,
    Renderer,
    SentJournal,
    SignalNotifications,
)

_IDLE_RESCAN_SECONDS = 30.0  # re-read the outbox now and then even when nobody wakes us
_U0_ALARM_ATTEMPTS = 3  # a U0 still undelivered after this many attempts is logged as error
_ACK_URGENCIES = (Urgency.U0, Urgency.U1)  # RULES.md §0.3: these are acknowledged
AckLink = Callable[[NotificationPlan, datetime], str | None]
Failover = Callable[[NotificationPlan, str], tuple[NotificationPlan, ...]]


@dataclass(frozen=True, slots=True)
class SignalIntake:
    """Plan and record the notifications of a batch of signals (one transaction)."""

    store: NotificationStore
    routing: Routing
    clock: Clock
    log: Logger
    consumer: str
    on_recorded: Callable[[], None] = lambda: None
    display_tz: tzinfo | None = None
    #: When set, U2/U3 notifications wait for their recipient's digest (RULES.md §0.3).
    digests: DigestSchedule | None = None

    async def __call__(
        self,
        signals: Sequence[SignalRaised | SignalUpdated],
        dead_letters: Sequence[DeadLetter] = (),
    ) -> IntakeResult:
        """Record the batch; wake the sender when something new is to be sent."""
        now = self.clock.now()
        planned = [
            (signal, plan_notifications(signal, self.routing, display_tz=self.display_tz))
            for signal in signals
        ]
        # One page per person per causing fact (core/pages.py): pages recorded by earlier
        # batches are read first. The consumer records its batches one after another and
        # this store is their single writer, so nothing records a page in between.
        keys = pages.keys_of(planned)
        earlier = await self.store.pages(keys) if keys else {}
        decided = pages.one_page_each(planned, earlier)
        items = tuple(
            self._plan(signal, plans, now)
            for (signal, _), plans in zip(planned, decided, strict=True)
        )
        batch = IntakeBatch(self.consumer, now, items, tuple(dead_letters))
        result = await self.store.record_intake(batch)
        if result.notifications:
            self.on_recorded()
        self._log(items, result, {s.event_id: _correlation(s) for s in signals})
        return result

    def _plan(
        self,
        signal: SignalRaised | SignalUpdated,
        plans: tuple[NotificationPlan, ...],
        now: datetime,
    ) -> SignalNotifications:
        if self.digests is not None:
            plans = tuple(into_digest(plan, self.digests, now=now) for plan in plans)
        facts = tuple(audit.intended_fact(plan, now=now) for plan in plans)
        # A signal delivered to everyone on another signal's page needs no acknowledgement
        # of its own: acknowledging that page covers the event, and it never escalates.
        wants_ack = signal.payload.urgency in _ACK_URGENCIES and pages.pages_anyone(plans)
        if isinstance(signal, SignalUpdated):
            wants_ack = wants_ack and signal.status == "updated"
            return SignalNotifications(
                signal.event_id, plans, facts, wants_ack, signal.signal_id, signal.status
            )
        return SignalNotifications(signal.event_id, plans, facts, wants_ack)

    def _log(
        self,
        items: Sequence[SignalNotifications],
        result: IntakeResult,
        correlations: Mapping[UUID, str | None],
    ) -> None:
        new = set(result.new_signals)
        for item in items:
            if item.signal_id not in new:
                continue
            new.discard(item.signal_id)  # a repeat later in the batch is a duplicate
            correlation = correlations.get(item.signal_id)
            ids = {"signal_id": str(item.signal_id), "correlation_id": correlation}
            for gap in dict.fromkeys(gap for plan in item.plans for gap in plan.gaps):
                self.log.warning(
                    "notification_rerouted", **ids,
                    role=gap.role.value, reason=gap.reason, site_id=gap.site_id,
                )  # fmt: skip
            self.log.info("notifications_intended", **ids, count=len(item.plans))
        for signal_id in result.duplicates:
            self.log.info(
                "signal_duplicate_skipped",
                signal_id=str(signal_id),
                correlation_id=correlations.get(signal_id),
            )


@dataclass(frozen=True, slots=True)
class SendPolicy:
    """How the sender paces itself: burst size, and backoff that never gives up."""

    base_seconds: float = DEFAULT_BASE_SECONDS
    cap_seconds: float = DEFAULT_CAP_SECONDS
    burst: int = 100
    jitter: Callable[[], float] = field(default=random.random)
    #: Rewrite the sent journal once it holds this many lines (each is in the outbox by then).
    journal_compact_at: int = 1000

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt`."""
        return retry_delay(
            attempt, jitter=self.jitter(), base=self.base_seconds, cap=self.cap_seconds
        )


class _NoJournal:
    """No sent journal: every in-doubt row is resent (unit tests that do not need one)."""

    def record(self, sends: Sequence[JournaledSend]) -> bool:
        return True  # nothing to keep, so nothing failed (no "write failed" warning)

    def find(self, notification_id: UUID) -> JournaledSend | None:
        return None

    def entries(self) -> list[JournaledSend]:
        return []

    def compact(self, keep: Sequence[JournaledSend]) -> None:
        return None


class Sender:
    """Send intended notifications as soon as they are recorded; retry until confirmed."""

    def __init__(  # noqa: PLR0913 - collaborators of one use-case, all keyword-only
        self,
        *,
        store: NotificationStore,
        mailer: Mailer,
        renderer: Renderer,
        clock: Clock,
        log: Logger,
        policy: SendPolicy | None = None,
        ack_link: AckLink | None = None,
        failover: Failover | None = None,
        journal: SentJournal | None = None,
    ) -> None:
        self._store, self._mailer, self._renderer = store, mailer, renderer
        self._clock, self._log = clock, log
        self._policy = policy or SendPolicy()
        self._ack_link = ack_link
        self._failover = failover
        self._journal: SentJournal = journal or _NoJournal()
        # Journaled confirmations whose outbox commit has not returned yet: compaction
        # must keep them.
        self._unsettled: dict[UUID, JournaledSend] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._server_failures = 0
        self._hold_until: datetime | None = None

    def wake(self) -> None:
        """Something was recorded: run a pass now."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the message in hand, then leave `run()`."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Send until stopped; the first pass sends everything left unconfirmed (recovery)."""
        await self.recover()
        everything = True
        while not self._stopping:
            self._wake.clear()
            full = await self.send_due(everything=everything)
            everything = False
            if not full and not self._stopping:
                await self._idle()

    async def recover(self) -> int:
        """Record as sent every in-doubt row whose 250 the journal kept; return how many.

        Runs before the first burst. Afterwards every journal entry is in the outbox (or
        was there already), so the journal is compacted down to the unsettled ones.
        """
        recovered = 0
        if self._journal.entries():
            for item in await self._store.in_doubt():
                send = self._journal.find(item.plan.notification_id)
                if send is not None:
                    recovered += await self._record_sent(item, send, recovered=True)
        self._compact(force=True)
        return recovered

    async def send_due(self, *, everything: bool = False) -> bool:
        """Run one burst over one SMTP session; return True when the burst was full."""
        now = self._clock.now()
        limit = self._policy.burst
        batch = await self._store.pending(due_by=None if everything else now, limit=limit, now=now)
        if not batch:
            return False
        completed = True
        async with self._mailer.session() as session:
            for group in _groups(batch):
                if self._stopping or not await self._attempt(session, group):
                    completed = False
                    break
        self._compact()
        return completed and len(batch) >= limit

    def _compact(self, *, force: bool = False) -> None:
        entries = self._journal.entries()
        if not entries or (not force and len(entries) < self._policy.journal_compact_at):
            return
        try:
            self._journal.compact(list(self._unsettled.values()))
        except OSError as exc:  # the journal only grows; the next pass tries again
            self._log.warning("sent_journal_compact_failed", error=f"{type(exc).__name__}: {exc}")

    async def _idle(self) -> None:
        timeout = _IDLE_RESCAN_SECONDS
        due = await self._store.next_attempt_at()
        if due is not None:
            at = max(due, self._hold_until) if self._hold_until else due
            timeout = min(max((at - self._clock.now()).total_seconds(), 0.005), timeout)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _attempt(self, session: MailSession, items: Sequence[Pending]) -> bool:
        """Send one email (a notification, or a digest of several) and record the outcome.

        Returns False when the server is down.
        """
        if any(item.in_doubt for item in items):
            items = await self._settle_journaled(items)
            if not items:
                return True
        head = items[0]
        attempt = max(item.attempts for item in items) + 1
        plan = head.plan if head.plan.digest_key is None else digest_plan([i.plan for i in items])
        in_doubt = any(item.in_doubt for item in items)
        try:
            plan = self._with_ack_link(plan)
            text, html = self._renderer.render(plan)
            mail = OutgoingMail(plan, text, html, possible_duplicate=in_doubt)
            if in_doubt:
                self._log.warning("notification_in_doubt_resent", **_fields(head))
            # Committed before the conversation: after a crash this row is known to be
            # "in doubt" (maybe accepted) rather than "never tried" (see sending_at).
            for item in items:
                await self._store.mark_sending(item.plan.notification_id, at=self._clock.now())
            reply = await session.send(mail)
        except PermanentError as exc:
            await self._failed_all(items, attempt, exc, permanent=True, about=plan)
            return True
        except MailServerUnavailableError as exc:
            await self._failed_all(items, attempt, exc, permanent=False, about=plan)
            self._hold()
            return False
        except NotifyError as exc:  # transient: 4xx or a render defect; retry this one later
            await self._failed_all(items, attempt, exc, permanent=False, about=plan)
            return True
        # Nothing may await between the 250 and this write: it is what makes a kill -9 from
        # here on end in "sent" rather than "in doubt" (the outbox commit below may queue).
        at = self._clock.now()
        sends = [JournaledSend(item.plan.notification_id, attempt, reply, at) for item in items]
        if self._journal.record(sends):
            self._unsettled.update((send.notification_id, send) for send in sends)
        else:
            self._log.warning("sent_journal_write_failed", **_fields(head))
        self._server_failures, self._hold_until = 0, None
        for item, send in zip(items, sends, strict=True):
            await self._record_sent(item, send)
        return True

    async def _settle_journaled(self, items: Sequence[Pending]) -> list[Pending]:
        """Record in-doubt rows the journal confirms; return the rest (to be resent)."""
        rest: list[Pending] = []
        for item in items:
            send = self._journal.find(item.plan.notification_id) if item.in_doubt else None
            if send is None:
                rest.append(item)
            else:
                await self._record_sent(item, send, recovered=True)
        return rest

    async def _failed_all(
        self, items: Sequence[Pending], attempt: int, exc: Exception, *, permanent: bool,
        about: NotificationPlan,
    ) -> None:  # fmt: skip
        # Only the first row carries the follow-ups (next route, alarm) of the email `about`.
        for index, item in enumerate(items):
            await self._failed(
                item, attempt, exc, permanent=permanent, about=about if index == 0 else None
            )

    def _with_ack_link(self, plan: NotificationPlan) -> NotificationPlan:
        link = None
        # A retraction needs no acknowledgement: it closes the alert it replies to.
        wanted = plan.urgency in _ACK_URGENCIES and plan.context.get("kind") != "retracted"
        # A same-event message is acknowledged through the page it is delivered on.
        wanted = wanted and not pages.is_same_event(plan)
        if self._ack_link is not None and wanted:
            link = self._ack_link(plan, self._clock.now())
        return replace(plan, context={**plan.context, "ack_url": link})

    async def _record_sent(
        self, item: Pending, send: JournaledSend, *, recovered: bool = False
    ) -> int:
        # The fact is built from the journal entry alone (attempt, reply, time of the 250),
        # so it is the same bytes whether this process or its successor records it; the
        # store applies it to a still-intended row only, so it is chained exactly once.
        reply, attempt = send.smtp_reply, send.attempt
        fact = audit.sent_fact(item.plan, attempt=attempt, smtp_reply=reply, now=send.at)
        outcome = AttemptOutcome(
            item.plan.notification_id, "sent", attempt, send.at, fact, smtp_reply=reply
        )
        # Recorded before the next message, so the journal holds at most a burst's worth
        # of confirmations the outbox lacks.
        applied = await self._store.record_outcomes([outcome])
        self._unsettled.pop(send.notification_id, None)
        event = "notification_sent_from_journal" if recovered else "notification_sent"
        self._log.info(event, **_fields(item), attempt=attempt, smtp_reply=reply)
        return applied

    async def _failed(
        self, item: Pending, attempt: int, exc: Exception, *, permanent: bool,
        about: NotificationPlan | None = None,
    ) -> None:  # fmt: skip
        now, error = self._clock.now(), f"{type(exc).__name__}: {exc}"
        plan = item.plan
        fact = audit.failed_fact(plan, attempt=attempt, error=error, permanent=permanent, now=now)
        retry_at = None if permanent else now + timedelta(seconds=self._policy.delay(attempt))
        kind: OutcomeKind = "failed" if permanent else "retry"
        follow_ups = self._failover(about, error) if permanent and self._failover and about else ()
        outcome = AttemptOutcome(
            item.plan.notification_id, kind, attempt, now, fact,
            error=error, next_attempt_at=retry_at, follow_ups=follow_ups,
            follow_up_facts=tuple(audit.intended_fact(p, now=now) for p in follow_ups),
        )  # fmt: skip
        await self._store.record_outcomes([outcome])
        fields = {**_fields(item), "attempt": attempt, "error": error}
        if permanent:
            self._log.error("notification_failed_permanently", **fields, follow_ups=len(follow_ups))
        elif item.plan.urgency is Urgency.U0 and attempt >= _U0_ALARM_ATTEMPTS:
            self._log.error("notification_u0_still_undelivered", **fields, retry_at=str(retry_at))
        else:
            self._log.warning("notification_retry_scheduled", **fields, retry_at=str(retry_at))

    def _hold(self) -> None:
        # The server is down: wait before the next burst unless new work wakes us.
        self._server_failures += 1
        delay = self._policy.delay(self._server_failures)
        self._hold_until = self._clock.now() + timedelta(seconds=delay)
        self._log.warning("mail_server_unavailable", retry_in_s=round(delay, 3))


def _groups(batch: Sequence[Pending]) -> list[list[Pending]]:
    """One group per email: each immediate notification alone, digest rows by digest key."""
    groups: list[list[Pending]] = []
    digests: dict[str, list[Pending]] = {}
    for item in batch:
        key = item.plan.digest_key
        if key is None:
            groups.append([item])
        elif key in digests:
            digests[key].append(item)
        else:
            digests[key] = [item]
            groups.append(digests[key])
    return groups


def _fields(item: Pending) -> dict[str, object]:
    plan = item.plan
    return {
        "notification_id": str(plan.notification_id),
        "signal_id": str(plan.signal_id),
        "correlation_id": None if plan.correlation_id is None else str(plan.correlation_id),
        "role": plan.role.value,
        "urgency": plan.urgency.value,
    }


def _correlation(signal: SignalRaised | SignalUpdated) -> str | None:
    """The id one alert is traced by in every service (README "Tracing one alert").

    The event id of the fact behind the signal: rules set the signal's correlation id to it
    (the plans carry the same value), its causation id otherwise.
    """
    found = signal.correlation_id or signal.causation_id
    return None if found is None else str(found)
