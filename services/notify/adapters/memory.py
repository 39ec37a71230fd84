"""In-memory implementations of the notify ports (adapters layer), for dev and tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

from services.notify.adapters._rows import notification_row, split_new
from services.notify.core import audit
from services.notify.core.audit import AuditEntry, ChainHead
from services.notify.core.pages import PageRef, is_same_event, page_ref
from services.notify.core.plan import NotificationPlan
from services.notify.ports import (
    AttemptOutcome,
    DeadLetter,
    IntakeBatch,
    IntakeResult,
    JournaledSend,
    NotificationRow,
    OutgoingMail,
    Pending,
    Status,
)


@dataclass
class _Row:
    plan: NotificationPlan
    intended_at: datetime
    status: Status = "intended"
    attempts: int = 0
    next_attempt_at: datetime | None = None
    smtp_reply: str | None = None
    last_error: str | None = None
    sent_at: datetime | None = None
    #: Handed to the SMTP server with no outcome recorded yet (the DuckDB `sending_at`).
    sending_at: datetime | None = None

    def as_row(self) -> NotificationRow:
        return notification_row(
            self.plan, status=self.status, attempts=self.attempts,
            intended_at=self.intended_at, next_attempt_at=self.next_attempt_at,
            sent_at=self.sent_at, smtp_reply=self.smtp_reply, last_error=self.last_error,
            digest_key=self.plan.digest_key,
        )  # fmt: skip


class InMemoryNotificationStore:
    """NotificationStore in dicts and lists; same contract as the DuckDB store."""

    def __init__(self) -> None:
        self._tracking: dict[str, set[UUID]] = {}
        self._outbox: dict[UUID, _Row] = {}
        self._audit: list[AuditEntry] = []
        self._head = ChainHead()
        self._dead_letters: dict[tuple[str, int], DeadLetter] = {}
        self.sending: list[tuple[UUID, datetime]] = []

    async def record_intake(self, batch: IntakeBatch) -> IntakeResult:
        """Record tracking, intended notifications, audit rows and dead letters together."""
        tracked = self._tracking.setdefault(batch.consumer, set())
        new, duplicates = split_new(batch.signals, tracked)
        entries, head = audit.link(self._head, [fact for item in new for fact in item.audit])
        for item in new:
            tracked.add(item.signal_id)
            for plan in item.plans:
                self._outbox[plan.notification_id] = _Row(
                    plan, batch.recorded_at, next_attempt_at=plan.not_before or batch.recorded_at
                )
        for letter in batch.dead_letters:
            self._dead_letters.setdefault((batch.consumer, letter.stream_seq), letter)
        self._audit.extend(entries)
        self._head = head
        count = sum(len(item.plans) for item in new)
        return IntakeResult(tuple(n.signal_id for n in new), duplicates, count)

    async def pages(self, keys: Sequence[str]) -> dict[str, PageRef]:
        """The first page recorded under each key (any status)."""
        wanted, found = set(keys), {}
        rows = sorted(
            self._outbox.values(), key=lambda r: (r.intended_at, str(r.plan.notification_id))
        )
        for row in rows:
            plan = row.plan
            if plan.page_key in wanted and plan.page_key not in found:
                found[plan.page_key] = page_ref(
                    plan.page_key, plan.notification_id, plan.signal_id, plan.message_id,
                    plan.context,
                )  # fmt: skip
        return found

    async def pending(
        self, *, due_by: datetime | None, limit: int, now: datetime | None = None
    ) -> list[Pending]:
        """Intended notifications due by `due_by`, U0 first; held digests only by `now`."""
        rows = [row for row in self._outbox.values() if row.status == "intended"]
        rows = [row for row in rows if _due(row, due_by=due_by, now=now)]
        rows.sort(key=_pending_order)
        return [Pending(row.plan, row.attempts, row.sending_at is not None) for row in rows[:limit]]

    async def next_attempt_at(self) -> datetime | None:
        """Earliest next attempt among intended notifications."""
        rows = self._outbox.values()
        times = [r.next_attempt_at or r.intended_at for r in rows if r.status == "intended"]
        return min(times, default=None)

    async def mark_sending(self, notification_id: UUID, *, at: datetime) -> None:
        """Note the hand-over to the SMTP server (kept for tests to inspect)."""
        self.sending.append((notification_id, at))
        row = self._outbox.get(notification_id)
        if row is not None and row.status == "intended":
            row.sending_at = at

    async def in_doubt(self) -> list[Pending]:
        """Intended notifications marked sending, oldest hand-over first."""
        rows = [r for r in self._outbox.values() if r.status == "intended" and r.sending_at]
        rows.sort(key=lambda r: (r.sending_at, str(r.plan.notification_id)))
        return [Pending(row.plan, row.attempts, in_doubt=True) for row in rows]

    async def record_outcomes(self, outcomes: Sequence[AttemptOutcome]) -> int:
        """Apply outcomes to still-intended notifications and chain their audit facts."""
        applied = [o for o in outcomes if self._intended(o.notification_id)]
        facts = [f for o in applied for f in (o.fact, *o.follow_up_facts)]
        entries, head = audit.link(self._head, facts)
        for outcome in applied:
            _apply(self._outbox[outcome.notification_id], outcome)
            for plan in outcome.follow_ups:
                self._outbox.setdefault(
                    plan.notification_id, _Row(plan, outcome.at, next_attempt_at=outcome.at)
                )
        self._audit.extend(entries)
        self._head = head
        return len(applied)

    def _intended(self, notification_id: UUID) -> bool:
        row = self._outbox.get(notification_id)
        return row is not None and row.status == "intended"

    async def notifications(self, signal_id: UUID | None = None) -> list[NotificationRow]:
        """Outbox rows as plain dicts, in intended order."""
        rows = sorted(
            self._outbox.values(), key=lambda r: (r.intended_at, r.plan.role, r.plan.address)
        )
        return [r.as_row() for r in rows if signal_id is None or r.plan.signal_id == signal_id]

    async def unsent_count(self) -> int:
        """Count intended, unconfirmed notifications."""
        # Same rule as the DuckDB store: a digest row counts once its digest is due.
        now = datetime.now(UTC)
        return sum(
            1
            for row in self._outbox.values()
            if row.status == "intended"
            and (row.plan.digest_key is None or (row.next_attempt_at or row.intended_at) <= now)
        )

    async def dead_letters(self) -> list[DeadLetter]:
        """Return the dead letters in stream order."""
        return [self._dead_letters[key] for key in sorted(self._dead_letters)]

    async def audit_entries(self) -> list[AuditEntry]:
        """Return the audit trail in seq order."""
        return list(self._audit)

    async def audit_entries_after(self, seq: int, *, limit: int) -> list[AuditEntry]:
        """Up to `limit` audit entries with a seq above `seq`, in seq order."""
        return [entry for entry in self._audit if entry.seq > seq][:limit]

    def tamper(self, seq: int, wire: str) -> None:
        """Replace one entry's wire form, as an attacker with write access could (tests only)."""
        index = seq - 1
        self._audit[index] = replace(self._audit[index], wire=wire)


def _due(row: _Row, *, due_by: datetime | None, now: datetime | None) -> bool:
    at = row.next_attempt_at or row.intended_at
    if row.plan.digest_key is not None:
        return now is not None and at <= now
    return due_by is None or at <= due_by


def _pending_order(row: _Row) -> tuple[str, bool, datetime, datetime, bool, bool, str]:
    # Same order as the DuckDB store: same-event replies after every page of their urgency,
    # a reply after the emails recorded with it, the safety officer's copy of a signal first.
    due = row.next_attempt_at or row.intended_at
    same_event = is_same_event(row.plan)
    reply = row.plan.references is not None
    not_so = row.plan.role != "safety_officer"
    nid = str(row.plan.notification_id)
    return (row.plan.urgency.value, same_event, due, row.intended_at, reply, not_so, nid)


def _apply(row: _Row, outcome: AttemptOutcome) -> None:
    row.attempts, row.sending_at = outcome.attempt, None
    if outcome.kind == "sent":
        row.status, row.smtp_reply, row.sent_at = "sent", outcome.smtp_reply, outcome.at
        row.next_attempt_at = None
    elif outcome.kind == "failed":
        row.status, row.last_error, row.next_attempt_at = "failed", outcome.error, None
    else:
        row.last_error, row.next_attempt_at = outcome.error, outcome.next_attempt_at


@dataclass
class InMemorySentJournal:
    """SentJournal in a dict (tests); `writes` counts record() calls that wrote."""

    kept: dict[UUID, JournaledSend] = field(default_factory=dict)
    writes: int = 0
    fail: bool = False

    def record(self, sends: Sequence[JournaledSend]) -> bool:
        """Keep the confirmations, or refuse as a full disk would when `fail` is set."""
        if self.fail:
            return False
        self.writes += 1
        self.kept.update((send.notification_id, send) for send in sends)
        return True

    def find(self, notification_id: UUID) -> JournaledSend | None:
        """The confirmation kept for this notification, if any."""
        return self.kept.get(notification_id)

    def entries(self) -> list[JournaledSend]:
        """Every confirmation kept, in insertion order."""
        return list(self.kept.values())

    def compact(self, keep: Sequence[JournaledSend]) -> None:
        """Keep only `keep`."""
        self.kept = {send.notification_id: send for send in keep}


@dataclass
class ManualClock:
    """A clock tests move by hand."""

    current: datetime = field(default_factory=lambda: datetime(2024, 3, 1, 10, 0, tzinfo=UTC))

    def now(self) -> datetime:
        """Return the current fake time."""
        return self.current

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.current += timedelta(seconds=seconds)


@dataclass
class RecordingMailer:
    """A Mailer that keeps what it sends; `fail_with` decides the fate of each message."""

    sent: list[OutgoingMail] = field(default_factory=list)
    sessions: int = 0
    fail_with: Callable[[OutgoingMail], Exception | None] = lambda _mail: None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[RecordingMailer]:
        """Count sessions so tests can see one connection per burst."""
        self.sessions += 1
        yield self

    async def send(self, mail: OutgoingMail) -> str:
        """Record the mail, or raise what `fail_with` says."""
        error = self.fail_with(mail)
        if error is not None:
            raise error
        self.sent.append(mail)
        return f"250 2.0.0 Ok: queued as MEM{len(self.sent)}"
