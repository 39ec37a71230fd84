"""DuckDB implementation of the NotificationStore port (adapters layer).

All work runs on the file's single writer thread. A batch of signals is recorded in one
transaction: tracking rows, the outbox rows and the chained audit rows, each inserted as
one registered Arrow table (`INSERT ... SELECT`), never row by row.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import duckdb
import pyarrow as pa

from kit.duckdb_worker import DuckDBWorker, transaction
from kit.files import file_sha256
from schemas import Role, Urgency
from schemas.snapshots import FileReport
from services.notify.adapters import _duckdb_alerts as alerts
from services.notify.adapters import _duckdb_sql as sql
from services.notify.adapters._rows import notification_row, split_new
from services.notify.adapters.audit_export import copy_notify_tables
from services.notify.core import audit
from services.notify.core.audit import AuditEntry, ChainHead
from services.notify.core.errors import StoreUnavailableError
from services.notify.core.escalation import AlertState
from services.notify.core.pages import PageRef, page_ref
from services.notify.core.plan import NotificationPlan
from services.notify.ports import (
    Acknowledgement,
    AttemptOutcome,
    DeadLetter,
    DeliveryLogRow,
    IntakeBatch,
    IntakeResult,
    NotificationRow,
    OpenAlert,
    Pending,
)

T = TypeVar("T")
_UPDATES = {"sent": sql.MARK_SENT, "retry": sql.MARK_RETRY, "failed": sql.MARK_FAILED}
_TS = pa.timestamp("us", tz="UTC")


class DuckDBNotificationStore:
    """The notify service's own DuckDB file: tracking, outbox, audit trail, dead letters."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._worker = DuckDBWorker(path)
        self._head = ChainHead()

    def open(self) -> None:
        """Open the file, apply the schema and read the audit chain head."""
        self._worker.open(sql.SCHEMA)
        row = self._worker.run_sync(lambda con: con.execute(sql.CHAIN_HEAD).fetchone())
        self._head = ChainHead(int(row[0]), str(row[1])) if row else ChainHead()

    def close(self) -> None:
        """Checkpoint and close the file."""
        self._worker.close()

    async def _run(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        try:
            return await self._worker.run(fn)
        except duckdb.Error as exc:
            msg = f"notify store {self.path.name}: {type(exc).__name__}: {str(exc)[:300]}"
            raise StoreUnavailableError(msg) from exc

    async def record_intake(self, batch: IntakeBatch) -> IntakeResult:
        """Record a consumer batch in one transaction; tracked signals add nothing."""
        return await self._run(lambda con: self._commit(con, lambda: self._intake(con, batch)))

    def _commit(self, con: duckdb.DuckDBPyConnection, body: Callable[[], tuple[T, ChainHead]]) -> T:
        # Runs on the writer thread: the chain head moves right after COMMIT, before any
        # other job on this thread can read it, and not at all when the body rolls back.
        result, head = transaction(con, body)
        self._head = head
        return result

    def _intake(
        self, con: duckdb.DuckDBPyConnection, batch: IntakeBatch
    ) -> tuple[IntakeResult, ChainHead]:
        tracked = _tracked(con, batch.consumer, [item.signal_id for item in batch.signals])
        new, duplicates = split_new(batch.signals, tracked)
        now = batch.recorded_at
        _insert(con, "tracking", {
            "consumer": (pa.string(), [batch.consumer] * len(new)),
            "event_id": (pa.string(), [str(item.signal_id) for item in new]),
            "recorded_at": (_TS, [now] * len(new)),
        })  # fmt: skip
        plans = [plan for item in new for plan in item.plans]
        _insert(con, "outbox", _outbox_columns(plans, now))
        _insert(con, "dead_letters", _dead_letter_columns(batch), conflict="DO NOTHING")
        alerts.insert_alerts(con, new, now)
        head = self._append(con, [fact for item in new for fact in item.audit])
        result = IntakeResult(tuple(item.signal_id for item in new), duplicates, len(plans))
        return result, head

    def _append(
        self, con: duckdb.DuckDBPyConnection, facts: Sequence[audit.AuditFact]
    ) -> ChainHead:
        entries, head = audit.link(self._head, facts)
        _insert(con, "audit_trail", _audit_columns(entries))
        return head

    async def pages(self, keys: Sequence[str]) -> dict[str, PageRef]:
        """The first page recorded under each key (any status)."""
        params = {"keys": list(keys)}
        rows = await self._run(lambda con: con.execute(sql.PAGES, params).fetchall())
        return {
            row[0]: page_ref(row[0], row[1], row[2], row[3], json.loads(row[4])) for row in rows
        }

    async def pending(
        self, *, due_by: datetime | None, limit: int, now: datetime | None = None
    ) -> list[Pending]:
        """Intended notifications due by `due_by` (all when None), U0 first; digests by `now`."""
        params = {"due_by": due_by, "limit": limit, "now": now}
        rows = await self._run(lambda con: con.execute(sql.PENDING, params).fetchall())
        return [
            Pending(replace(_plan_of(row), digest_key=row[16]), int(row[14]), row[15] is not None)
            for row in rows
        ]

    async def in_doubt(self) -> list[Pending]:
        """Intended notifications marked sending (a previous attempt's outcome is unknown)."""
        rows = await self._run(lambda con: con.execute(sql.IN_DOUBT).fetchall())
        return [
            Pending(replace(_plan_of(row), digest_key=row[16]), int(row[14]), True) for row in rows
        ]

    async def flush_digests(self, *, at: datetime) -> int:
        """Make every held digest due now (on demand; the demo uses it)."""
        params = {"at": at}
        rows = await self._run(lambda con: con.execute(sql.FLUSH_DIGESTS, params).fetchall())
        return len(rows)

    async def next_attempt_at(self) -> datetime | None:
        """Earliest next attempt among intended notifications."""
        row = await self._run(lambda con: con.execute(sql.NEXT_ATTEMPT_AT).fetchone())
        return row[0] if row else None

    async def mark_sending(self, notification_id: UUID, *, at: datetime) -> None:
        """Commit the 'sending' marker before the SMTP conversation starts."""
        params = {"id": notification_id, "at": at}
        await self._run(lambda con: con.execute(sql.MARK_SENDING, params).fetchall())

    async def record_outcomes(self, outcomes: Sequence[AttemptOutcome]) -> int:
        """Apply outcomes to still-intended rows and chain their audit facts, atomically."""
        return await self._run(lambda con: self._commit(con, lambda: self._outcomes(con, outcomes)))

    def _outcomes(
        self, con: duckdb.DuckDBPyConnection, outcomes: Sequence[AttemptOutcome]
    ) -> tuple[int, ChainHead]:
        applied = [
            o for o in outcomes if con.execute(_UPDATES[o.kind], _update_params(o)).fetchall()
        ]
        follow_ups = [plan for o in applied for plan in o.follow_ups]
        if follow_ups:
            at = applied[0].at
            _insert(con, "outbox", _outbox_columns(follow_ups, at), conflict="DO NOTHING")
        facts = [f for o in applied for f in (o.fact, *o.follow_up_facts)]
        return len(applied), self._append(con, facts)

    async def notifications(self, signal_id: UUID | None = None) -> list[NotificationRow]:
        """Outbox rows, in intended order."""
        params = {"signal_id": signal_id}
        rows = await self._run(lambda con: con.execute(sql.NOTIFICATIONS, params).fetchall())
        return [_row_dict(row) for row in rows]

    async def unsent_count(self) -> int:
        """Count intended, unconfirmed notifications."""
        row = await self._run(lambda con: con.execute(sql.UNSENT_COUNT).fetchone())
        return int(row[0]) if row else 0

    async def dead_letters(self) -> list[DeadLetter]:
        """Return the dead letters in stream order."""
        rows = await self._run(lambda con: con.execute(sql.DEAD_LETTERS).fetchall())
        return [DeadLetter(int(r[0]), r[1], int(r[2]), r[3], bytes(r[4])) for r in rows]

    async def export_snapshot(self, directory: Path) -> dict[str, FileReport]:
        """Write the audit trail and outbox as Parquet into `directory` on the writer thread."""
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        files = await self._run(lambda con: copy_notify_tables(con, directory))
        for entry in files.values():
            entry["sha256"] = await asyncio.to_thread(file_sha256, Path(entry["path"]))
        return files

    async def audit_entries(self) -> list[AuditEntry]:
        """Return the whole audit trail in seq order."""
        rows = await self._run(lambda con: con.execute(sql.AUDIT_ENTRIES).fetchall())
        return [AuditEntry(*row) for row in rows]

    async def plan_of(self, notification_id: UUID) -> NotificationPlan | None:
        """The recorded notification, if any."""
        params = {"id": notification_id}
        row = await self._run(lambda con: con.execute(sql.PLAN_BY_ID, params).fetchone())
        return _plan_of(row) if row else None

    async def acknowledge(
        self, signal_id: UUID, *, by: str, reason: str, via: str, at: datetime
    ) -> Acknowledgement:
        """Record the first acknowledgement of a signal and its audit fact in one transaction."""

        def body(con: duckdb.DuckDBPyConnection) -> tuple[Acknowledgement, ChainHead]:
            first = alerts.check_acknowledgeable(con, signal_id)
            row = con.execute(sql.PLAN_BY_ID, {"id": first}).fetchone()
            plan = _plan_of(row)  # type: ignore[arg-type] # the alert's FK row exists
            params = {"id": signal_id, "at": at, "by": by, "reason": reason, "via": via}
            con.execute(sql.ACKNOWLEDGE, params).fetchall()
            fact = audit.acknowledged_fact(plan, by=by, reason=reason, via=via, now=at)
            ack = Acknowledgement(
                signal_id, plan.participant_id, by, reason, at, via, plan.correlation_id
            )
            return ack, self._append(con, [fact])

        return await self._run(lambda con: self._commit(con, lambda: body(con)))

    async def check_acknowledgeable(self, signal_id: UUID) -> None:
        """Raise what `acknowledge` would raise now; a read, nothing is recorded."""
        await self._run(lambda con: alerts.check_acknowledgeable(con, signal_id))

    async def open_alerts(self) -> list[OpenAlert]:
        """Unacknowledged open U0 alerts with their first email, oldest first."""

        def read(con: duckdb.DuckDBPyConnection) -> list[OpenAlert]:
            found = []
            for signal_id, urgency, raised_at, level, first in con.execute(
                sql.OPEN_U0_ALERTS
            ).fetchall():
                row = con.execute(sql.PLAN_BY_ID, {"id": first}).fetchone()
                if row is not None:
                    state = AlertState(signal_id, alerts.urgency_of(urgency), raised_at, level)
                    found.append(OpenAlert(state, _plan_of(row)))
            return found

        return await self._run(read)

    async def record_escalation(
        self, alert: OpenAlert, level: int, plans: Sequence[NotificationPlan],
        facts: Sequence[audit.AuditFact],
    ) -> bool:  # fmt: skip
        """Raise the level, record its emails and facts; False when the alert moved on."""

        def body(con: duckdb.DuckDBPyConnection) -> tuple[bool, ChainHead]:
            params = {"id": alert.state.signal_id, "level": level}
            if not con.execute(sql.RAISE_LEVEL, params).fetchall():
                return False, self._head  # acknowledged or escalated meanwhile
            now = facts[0].recorded_at if facts else alert.state.raised_at
            _insert(con, "outbox", _outbox_columns(plans, now), conflict="DO NOTHING")
            return True, self._append(con, facts)

        return await self._run(lambda con: self._commit(con, lambda: body(con)))

    async def delivery_log(
        self, *, signal_id: UUID | None = None, participant_id: str | None = None
    ) -> list[DeliveryLogRow]:
        """Every audit fact about a signal or a participant, in trail order."""
        params = {"signal_id": signal_id, "participant": participant_id}
        rows = await self._run(lambda con: con.execute(sql.DELIVERY_LOG, params).fetchall())
        return alerts.log_rows(rows)

    async def audit_entries_after(self, seq: int, *, limit: int) -> list[AuditEntry]:
        """Up to `limit` committed audit entries with a seq above `seq`, in seq order."""
        params = {"after": seq, "limit": limit}
        rows = await self._run(lambda con: con.execute(sql.AUDIT_ENTRIES_AFTER, params).fetchall())
        return [AuditEntry(*row) for row in rows]


def _tracked(con: duckdb.DuckDBPyConnection, consumer: str, ids: list[UUID]) -> set[UUID]:
    if not ids:
        return set()
    incoming = pa.table({"event_id": pa.array([str(i) for i in ids], pa.string())})
    con.register("incoming", incoming)
    try:
        return {row[0] for row in con.execute(sql.ALREADY_TRACKED, [consumer]).fetchall()}
    finally:
        con.unregister("incoming")


def _insert(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: dict[str, tuple[pa.DataType, list[Any]]],
    *,
    conflict: str | None = None,
) -> None:
    """Insert all rows of one table with a single INSERT ... SELECT from an Arrow table."""
    if not next(iter(columns.values()))[1]:
        return
    data = pa.table({name: pa.array(values, kind) for name, (kind, values) in columns.items()})
    source = f"arrow_{table}"
    con.register(source, data)
    try:
        on_conflict = f" ON CONFLICT {conflict}" if conflict else ""
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {source}{on_conflict}")
    finally:
        con.unregister(source)


def _outbox_columns(
    plans: Sequence[NotificationPlan], now: datetime
) -> dict[str, tuple[pa.DataType, list[Any]]]:
    text = pa.string()
    n = len(plans)
    return {
        "notification_id": (text, [str(p.notification_id) for p in plans]),
        "signal_id": (text, [str(p.signal_id) for p in plans]),
        "trial_id": (text, [p.trial_id for p in plans]),
        "site_id": (text, [p.site_id for p in plans]),
        "participant_id": (text, [p.participant_id for p in plans]),
        "correlation_id": (text, [_text_or_none(p.correlation_id) for p in plans]),
        "role": (text, [p.role.value for p in plans]),
        "address": (text, [p.address for p in plans]),
        "urgency": (text, [p.urgency.value for p in plans]),
        "subject": (text, [p.subject for p in plans]),
        "message_id": (text, [p.message_id for p in plans]),
        "in_reply_to": (text, [p.references for p in plans]),
        "template": (text, [p.template for p in plans]),
        "context": (text, [json.dumps(p.context, sort_keys=True) for p in plans]),
        "status": (text, ["intended"] * n),
        "attempts": (pa.int32(), [0] * n),
        "next_attempt_at": (_TS, [p.not_before or now for p in plans]),
        "digest_key": (text, [p.digest_key for p in plans]),
        "page_key": (text, [p.page_key for p in plans]),
        "intended_at": (_TS, [now] * n),
        "updated_at": (_TS, [now] * n),
    }


def _text_or_none(value: object | None) -> str | None:
    return None if value is None else str(value)


def _dead_letter_columns(batch: IntakeBatch) -> dict[str, tuple[pa.DataType, list[Any]]]:
    letters = batch.dead_letters
    return {
        "consumer": (pa.string(), [batch.consumer] * len(letters)),
        "stream_seq": (pa.int64(), [d.stream_seq for d in letters]),
        "subject": (pa.string(), [d.subject for d in letters]),
        "num_delivered": (pa.int32(), [d.num_delivered for d in letters]),
        "error": (pa.string(), [d.error for d in letters]),
        "data": (pa.binary(), [d.data for d in letters]),
        "recorded_at": (_TS, [batch.recorded_at] * len(letters)),
    }


def _audit_columns(entries: Sequence[AuditEntry]) -> dict[str, tuple[pa.DataType, list[Any]]]:
    text = pa.string()
    return {
        "seq": (pa.int64(), [e.seq for e in entries]),
        "event_id": (text, [str(e.event_id) for e in entries]),
        "event_type": (text, [e.event_type for e in entries]),
        "notification_id": (text, [str(e.notification_id) for e in entries]),
        "signal_id": (text, [str(e.signal_id) for e in entries]),
        "recorded_at": (_TS, [e.recorded_at for e in entries]),
        "wire": (text, [e.wire for e in entries]),
        "prev_hash": (text, [e.prev_hash for e in entries]),
        "hash": (text, [e.hash for e in entries]),
    }


def _update_params(outcome: AttemptOutcome) -> dict[str, Any]:
    params: dict[str, Any] = {
        "id": outcome.notification_id,
        "attempt": outcome.attempt,
        "at": outcome.at,
    }
    if outcome.kind == "sent":
        params["smtp_reply"] = outcome.smtp_reply
    else:
        params["error"] = outcome.error
    if outcome.kind == "retry":
        params["next_attempt_at"] = outcome.next_attempt_at
    return params


def _plan_of(row: tuple[Any, ...]) -> NotificationPlan:
    return NotificationPlan(
        notification_id=row[0],
        signal_id=row[1],
        trial_id=row[2],
        site_id=row[3],
        participant_id=row[4],
        correlation_id=row[5],
        role=Role(row[6]),
        address=row[7],
        urgency=Urgency(row[8]),
        subject=row[9],
        message_id=row[10],
        references=row[11],
        template=row[12],
        context=json.loads(row[13]),
    )


def _row_dict(row: tuple[Any, ...]) -> NotificationRow:
    status, next_at, reply, error, intended_at, sent_at, digest_key = row[15:22]
    return notification_row(
        _plan_of(row), status=status, attempts=int(row[14]), next_attempt_at=next_at,
        smtp_reply=reply, last_error=error, intended_at=intended_at, sent_at=sent_at,
        digest_key=digest_key,
    )  # fmt: skip
