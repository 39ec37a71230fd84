"""Ports of the notify service: the Protocols and value types app.py needs from the outside."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NotRequired, Protocol, TypedDict
from uuid import UUID

from services.notify.core.audit import AuditEntry, AuditFact
from services.notify.core.escalation import AlertState
from services.notify.core.pages import PageRef
from services.notify.core.plan import NotificationPlan

Status = Literal["intended", "sent", "failed"]
OutcomeKind = Literal["sent", "retry", "failed"]


class NotificationRow(TypedDict):
    """One outbox row as the read side shows it; JSON-ready (ids and times are strings)."""

    notification_id: str
    signal_id: str
    role: str
    address: str
    urgency: str
    subject: str
    message_id: str
    status: Status
    attempts: int
    next_attempt_at: str | None
    smtp_reply: str | None
    last_error: str | None
    intended_at: str
    sent_at: str | None
    #: The digest a held U2 notification goes out in (None: sent on its own).
    digest_key: str | None


class DeliveryLogRow(TypedDict):
    """One audit fact of the delivery log (`AlertStore.delivery_log`); JSON-ready.

    The envelope is always there; the rest is the fact's payload detail, present only when
    the fact carries it (an attempt has a reply, an acknowledgement a reason, ...).
    """

    seq: int
    at: str
    event_type: str
    signal_id: str
    notification_id: str
    participant_id: str | None
    site_id: str | None
    actor: str | None
    role: NotRequired[str]
    address: NotRequired[str]
    urgency: NotRequired[str]
    attempt: NotRequired[int]
    smtp_reply: NotRequired[str]
    error: NotRequired[str]
    by: NotRequired[str]
    reason: NotRequired[str]
    level: NotRequired[int]
    to_roles: NotRequired[list[str]]
    #: On a failed attempt: whether the failure is for good.
    permanent: NotRequired[bool]


class Clock(Protocol):
    """Wall-clock time for the shell; the core never reads it."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware UTC."""
        ...


class Logger(Protocol):
    """The slice of a structlog logger the app uses (event name + key/values)."""

    def info(self, event: str, **kw: object) -> object:
        """Log a business outcome."""
        ...

    def warning(self, event: str, **kw: object) -> object:
        """Log a retry or a degraded route."""
        ...

    def error(self, event: str, **kw: object) -> object:
        """Log a dead letter or a permanent failure."""
        ...


@dataclass(frozen=True, slots=True)
class SignalNotifications:
    """Everything one signal produces: its planned notifications and their audit facts."""

    signal_id: UUID
    plans: tuple[NotificationPlan, ...]
    audit: tuple[AuditFact, ...]
    #: U0/U1: the signal awaits an acknowledgement (and a U0 escalates without one).
    wants_ack: bool = False
    #: An update or retraction supersedes this earlier signal: its escalation stops.
    closes: UUID | None = None
    #: How `closes` was superseded: "retracted" or "updated" (said to a late acknowledger).
    closes_as: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery that could not be decoded as a signal; kept for a human, never retried."""

    stream_seq: int
    subject: str
    num_delivered: int
    error: str
    data: bytes


@dataclass(frozen=True, slots=True)
class IntakeBatch:
    """One consumer batch, recorded in a single transaction with its tracking rows."""

    consumer: str
    recorded_at: datetime
    signals: tuple[SignalNotifications, ...]
    dead_letters: tuple[DeadLetter, ...] = ()


@dataclass(frozen=True, slots=True)
class IntakeResult:
    """What a batch changed: new signals, duplicates skipped, notifications intended."""

    new_signals: tuple[UUID, ...]
    duplicates: tuple[UUID, ...]
    notifications: int


@dataclass(frozen=True, slots=True)
class Pending:
    """An intended notification not yet confirmed by the SMTP server."""

    plan: NotificationPlan
    attempts: int
    #: A previous process handed it to the SMTP server and died before recording the reply.
    in_doubt: bool = False


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """The result of one send attempt: sent, retry later, or failed for good."""

    notification_id: UUID
    kind: OutcomeKind
    attempt: int
    at: datetime
    fact: AuditFact
    smtp_reply: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    #: Notifications a permanent failure leads to (next route, alarm), recorded with it.
    follow_ups: tuple[NotificationPlan, ...] = ()
    follow_up_facts: tuple[AuditFact, ...] = ()


@dataclass(frozen=True, slots=True)
class JournaledSend:
    """The SMTP server's 250 for one notification, as the sent journal keeps it."""

    notification_id: UUID
    attempt: int
    smtp_reply: str
    #: When the 250 arrived; the "sent" audit fact carries this time, live or recovered.
    at: datetime


class SentJournal(Protocol):
    """Confirmations written the instant the 250 arrives, before the outbox commit.

    Closes most of the window in which a kill -9 would leave an accepted message "in
    doubt": the store's commit may queue behind other writes, this write may not.
    """

    def record(self, sends: Sequence[JournaledSend]) -> bool:
        """Keep these confirmations (one write, no await); False when it could not."""
        ...

    def find(self, notification_id: UUID) -> JournaledSend | None:
        """The confirmation kept for this notification, if any."""
        ...

    def entries(self) -> list[JournaledSend]:
        """Every confirmation kept, oldest first."""
        ...

    def compact(self, keep: Sequence[JournaledSend]) -> None:
        """Drop every confirmation but `keep` (the rest are in the store already)."""
        ...


class NotificationStore(Protocol):
    """Tracking, outbox and audit trail, owned by the notify service alone."""

    async def record_intake(self, batch: IntakeBatch) -> IntakeResult:
        """Record tracking + intended notifications + audit rows + dead letters atomically.

        A signal already tracked for this consumer (or twice in the batch) adds nothing.
        """
        ...

    async def pages(self, keys: Sequence[str]) -> dict[str, PageRef]:
        """The U0 page recorded under each of these keys (core/pages.py), whatever its status.

        The first recorded under a key when several are (an earlier intake wins).
        """
        ...

    async def pending(
        self, *, due_by: datetime | None, limit: int, now: datetime | None = None
    ) -> list[Pending]:
        """Intended, unconfirmed notifications due by `due_by` (all when None), U0 first.

        Rows held for a digest are due only once their digest time has come by `now`.
        """
        ...

    async def next_attempt_at(self) -> datetime | None:
        """When the earliest intended notification is next due, if any."""
        ...

    async def mark_sending(self, notification_id: UUID, *, at: datetime) -> None:
        """Commit that this notification is being handed to the SMTP server now."""
        ...

    async def in_doubt(self) -> list[Pending]:
        """Intended notifications marked sending: handed to the server, no outcome recorded."""
        ...

    async def record_outcomes(self, outcomes: Sequence[AttemptOutcome]) -> int:
        """Apply outcomes to still-intended notifications, with audit rows; return how many."""
        ...

    async def notifications(self, signal_id: UUID | None = None) -> list[NotificationRow]:
        """Return the outbox as plain rows, optionally for one signal."""
        ...

    async def unsent_count(self) -> int:
        """How many notifications are intended and not yet confirmed or failed for good."""
        ...

    async def audit_entries(self) -> list[AuditEntry]:
        """Return the whole audit trail in seq order."""
        ...

    async def dead_letters(self) -> list[DeadLetter]:
        """Return the dead-lettered deliveries, oldest stream position first."""
        ...


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """A rendered notification: the plan plus its text and HTML bodies."""

    plan: NotificationPlan
    text: str
    html: str
    #: Resent after a crash left it in doubt: the recipient may hold a copy already.
    possible_duplicate: bool = False


class Renderer(Protocol):
    """Turns a plan into text and HTML bodies; raises RenderError on a template defect."""

    def render(self, plan: NotificationPlan) -> tuple[str, str]:
        """Return (text, html)."""
        ...


class MailSession(Protocol):
    """One SMTP connection reused for a burst of messages."""

    async def send(self, mail: OutgoingMail) -> str:
        """Send one message; return the server's reply, e.g. '250 2.0.0 Ok: queued as X'.

        Raises:
            DeliveryRefusedError: 5xx for this message (permanent).
            DeliveryDeferredError: 4xx for this message (retry later).
            MailServerUnavailableError: no usable connection (retry the burst later).
            HeaderInjectionError: a header value contains CR or LF.

        """
        ...


class Mailer(Protocol):
    """Opens SMTP sessions; connects lazily so errors surface per message."""

    def session(self) -> AbstractAsyncContextManager[MailSession]:
        """Open a session that is closed when the burst ends."""
        ...


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """An unacknowledged U0 alert and the first email sent about it."""

    state: AlertState
    first: NotificationPlan


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """A recorded acknowledgement: who took the alert, when, why, through which channel."""

    signal_id: UUID
    participant_id: str
    by: str
    reason: str
    at: datetime
    via: str
    #: The alert's correlation id (README "Tracing one alert"), for the log line.
    correlation_id: UUID | None = None


class AlertStore(Protocol):
    """Acknowledgements, escalations and the delivery log, in the notify store."""

    async def plan_of(self, notification_id: UUID) -> NotificationPlan | None:
        """The recorded notification, if there is one."""
        ...

    async def acknowledge(
        self, signal_id: UUID, *, by: str, reason: str, via: str, at: datetime
    ) -> Acknowledgement:
        """Record the first acknowledgement of a signal with its audit fact, atomically.

        Raises:
            UnknownAlertError: no alert awaits acknowledgement under this id.
            AlreadyAcknowledgedError: someone acknowledged it before.

        """
        ...

    async def check_acknowledgeable(self, signal_id: UUID) -> None:
        """Raise what `acknowledge` would raise now, recording nothing (the link's page).

        Raises:
            UnknownAlertError: no alert awaits acknowledgement under this id.
            AlreadyAcknowledgedError: someone acknowledged it before.
            AlertClosedError: the signal was retracted or superseded by an update.

        """
        ...

    async def open_alerts(self) -> list[OpenAlert]:
        """Unacknowledged, open U0 alerts, oldest first."""
        ...

    async def record_escalation(
        self,
        alert: OpenAlert,
        level: int,
        plans: Sequence[NotificationPlan],
        facts: Sequence[AuditFact],
    ) -> bool:
        """Raise the alert to `level` with its emails and facts; False if it moved meanwhile."""
        ...

    async def delivery_log(
        self, *, signal_id: UUID | None = None, participant_id: str | None = None
    ) -> list[DeliveryLogRow]:
        """Every audit fact about a signal or participant, in trail order."""
        ...


class TrailReader(Protocol):
    """Committed audit entries past a position: what the trail relay publishes."""

    async def audit_entries_after(self, seq: int, *, limit: int) -> list[AuditEntry]:
        """Up to `limit` entries with a seq above `seq`, in seq order."""
        ...


class ReadStore(Protocol):
    """What the read models ask of the notify store: outbox rows, the trail, open alerts."""

    async def notifications(self, signal_id: UUID | None = None) -> list[NotificationRow]:
        """Return the outbox as plain rows, optionally for one signal."""
        ...

    async def delivery_log(
        self, *, signal_id: UUID | None = None, participant_id: str | None = None
    ) -> list[DeliveryLogRow]:
        """Every audit fact about a signal or participant, in trail order."""
        ...

    async def flush_digests(self, *, at: datetime) -> int:
        """Make every held digest due at `at`; return the rows moved."""
        ...

    async def open_alerts(self) -> list[OpenAlert]:
        """Unacknowledged, open U0 alerts, oldest first."""
        ...

    async def unsent_count(self) -> int:
        """How many notifications are intended and not yet confirmed or failed for good."""
        ...

    async def dead_letters(self) -> list[DeadLetter]:
        """Return the dead-lettered deliveries, oldest stream position first."""
        ...

    async def audit_entries(self) -> list[AuditEntry]:
        """Return the whole audit trail in seq order."""
        ...
