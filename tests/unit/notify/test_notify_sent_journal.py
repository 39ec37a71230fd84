"""Sent journal: the file adapter, and start-up recovery of rows a kill -9 left in doubt.

A "crash" here is an exception that is not the sender's to handle, raised at the point
a kill -9 would have stopped the process: the store and journal objects are then dropped
without closing, and a new sender over the same files (or the same in-memory objects)
recovers.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4, uuid5

import pytest

from schemas import Role
from services.notify.adapters.duckdb_store import DuckDBNotificationStore
from services.notify.adapters.memory import (
    InMemoryNotificationStore,
    InMemorySentJournal,
    ManualClock,
    RecordingMailer,
)
from services.notify.adapters.sent_journal import FileSentJournal
from services.notify.app import Sender, SendPolicy, SignalIntake
from services.notify.core.audit import verify_chain
from services.notify.ports import (
    AttemptOutcome,
    JournaledSend,
    NotificationStore,
    OutgoingMail,
    SentJournal,
)
from tests.unit.notify.factories import make_routing, make_signal

pytestmark = pytest.mark.filterwarnings("error")

T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def _send(attempt: int = 1, reply: str = "250 2.0.0 Ok: queued as J1") -> JournaledSend:
    return JournaledSend(uuid4(), attempt, reply, T0 + timedelta(microseconds=123456))


# -- the file adapter ---------------------------------------------------------------------


def test_entries_outlive_the_process_without_close(tmp_path: Path) -> None:
    path = tmp_path / "notify.sent-journal"
    first = FileSentJournal(path)
    first.open()
    sends = [_send(), _send(attempt=3, reply="250 Ok ünïcode")]

    assert first.record(sends[:1]) is True
    assert first.record(sends[1:]) is True
    # No close(): a killed process never gets to it; the bytes are in the file already.
    again = FileSentJournal(path)
    again.open()

    assert again.entries() == sends
    assert again.find(sends[1].notification_id) == sends[1]
    assert again.find(uuid4()) is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first.close()
    again.close()


def test_torn_last_line_is_skipped_and_the_next_entry_starts_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = FileSentJournal(path)
    journal.open()
    kept = _send()
    journal.record([kept])
    journal.close()
    with path.open("ab") as raw:
        raw.write(b'{"id":"' + str(uuid4()).encode() + b'","attempt":1,"rep')  # died mid-write

    reopened = FileSentJournal(path)
    reopened.open()
    later = _send(reply="250 later")
    reopened.record([later])
    reopened.close()
    last = FileSentJournal(path)
    last.open()

    assert reopened.entries()[0] == kept
    assert last.entries() == [kept, later]
    last.close()


def test_compact_keeps_only_what_it_is_given_and_appends_go_on(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = FileSentJournal(path)
    journal.open()
    a, b, c = _send(), _send(), _send()
    journal.record([a, b, c])

    journal.compact([b])
    d = _send()
    journal.record([d])
    reopened = FileSentJournal(path)
    reopened.open()

    assert journal.entries() == [b, d]
    assert reopened.entries() == [b, d]
    assert journal.find(a.notification_id) is None
    assert len(path.read_bytes().splitlines()) == 2
    journal.close()
    reopened.close()


def test_after_write_hook_runs_once_the_line_is_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "j"
    seen: list[list[str]] = []
    journal = FileSentJournal(
        path,
        after_write=lambda: seen.append(
            [json.loads(x)["id"] for x in path.read_bytes().splitlines()]
        ),
    )
    journal.open()
    send = _send()

    journal.record([send])

    assert seen == [[str(send.notification_id)]]
    journal.close()


# -- recovery through the app, over both stores -------------------------------------------


class _Killed(BaseException):
    """Stands for kill -9: nothing in the sender catches it."""


@dataclass
class Files:
    """What survives a process: the DuckDB file and the journal (or the memory objects)."""

    kind: str
    root: Path
    memory_store: InMemoryNotificationStore | None = None
    memory_journal: InMemorySentJournal | None = None
    opened: list[DuckDBNotificationStore | FileSentJournal] | None = None

    def store(self) -> NotificationStore:
        if self.kind == "memory":
            self.memory_store = self.memory_store or InMemoryNotificationStore()
            return self.memory_store
        store = DuckDBNotificationStore(self.root / "notify.duckdb")
        store.open()
        self._keep(store)
        return store

    def journal(self, after_write: Callable[[], None] | None = None) -> SentJournal:
        if self.kind == "memory":
            self.memory_journal = self.memory_journal or InMemorySentJournal()
            return self.memory_journal
        journal = FileSentJournal(self.root / "notify.sent-journal", after_write=after_write)
        journal.open()
        self._keep(journal)
        return journal

    def crash(self) -> None:
        # DuckDB lets one connection per file: the "dead" one must let go (its commits are
        # what a killed process leaves; close() adds nothing uncommitted).
        if self.memory_store is not None:  # a new process has no fault patched in
            vars(self.memory_store).pop("record_outcomes", None)
        for thing in self.opened or []:
            thing.close()
        self.opened = []

    def _keep(self, thing: DuckDBNotificationStore | FileSentJournal) -> None:
        self.opened = [*(self.opened or []), thing]


@pytest.fixture(params=["memory", "duckdb"])
def files(request: pytest.FixtureRequest, tmp_path: Path) -> Files:
    return Files(request.param, tmp_path)


class _Log:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, object]]] = []

    def info(self, event: str, **kw: object) -> None:
        self.records.append(("info", event, kw))

    def warning(self, event: str, **kw: object) -> None:
        self.records.append(("warning", event, kw))

    def error(self, event: str, **kw: object) -> None:
        self.records.append(("error", event, kw))

    def events(self) -> list[str]:
        return [event for _, event, _ in self.records]


class _Renderer:
    def render(self, plan: object) -> tuple[str, str]:
        return "text", "<p>html</p>"


def _sender(
    store: NotificationStore,
    journal: SentJournal | None,
    mailer: RecordingMailer,
    log: _Log | None = None,
    compact_at: int = 1000,
) -> Sender:
    return Sender(
        store=store, mailer=mailer, renderer=_Renderer(), clock=ManualClock(T0), log=log or _Log(),
        journal=journal, policy=SendPolicy(jitter=lambda: 1.0, journal_compact_at=compact_at),
    )  # fmt: skip


async def _intend(store: NotificationStore, *roles: Role) -> list[UUID]:
    intake = SignalIntake(
        store=store, routing=make_routing(), clock=ManualClock(T0), log=_Log(), consumer="c"
    )
    signal = make_signal(
        site_id="S02", recipients=roles or (Role.SAFETY_OFFICER,)
    )  # 1 address each
    await intake([signal])
    return [UUID(row["notification_id"]) for row in await store.notifications(signal.event_id)]


def _dies_on_sent_commit(store: NotificationStore) -> None:
    """Kill the 'process' when it tries to commit a sent outcome (after the journal write)."""
    original = store.record_outcomes

    async def record_outcomes(outcomes: Sequence[AttemptOutcome]) -> int:
        if any(o.kind == "sent" for o in outcomes):
            raise _Killed
        return await original(outcomes)

    store.record_outcomes = record_outcomes  # type: ignore[method-assign]


async def _sent_facts(store: NotificationStore, notification_id: UUID) -> list[dict[str, Any]]:
    entries = [e for e in await store.audit_entries() if e.notification_id == notification_id]
    return [json.loads(e.wire) for e in entries if e.event_type == "notification_sent"]


async def test_kill_after_the_journal_write_is_recorded_sent_not_resent(files: Files) -> None:
    store = files.store()
    [nid] = await _intend(store)
    first_mailer = RecordingMailer()
    _dies_on_sent_commit(store)
    with pytest.raises(_Killed):
        await _sender(store, files.journal(), first_mailer).send_due()
    files.crash()

    store, log, mailer = files.store(), _Log(), RecordingMailer()
    journal = files.journal()
    sender = _sender(store, journal, mailer, log)
    recovered = await sender.recover()
    await sender.send_due(everything=True)

    assert len(first_mailer.sent) == 1
    assert (recovered, mailer.sent) == (1, [])  # the server's one copy is the only one
    [row] = await store.notifications()
    assert (row["status"], row["smtp_reply"]) == ("sent", "250 2.0.0 Ok: queued as MEM1")
    [fact] = await _sent_facts(store, nid)
    assert fact["payload"]["attempt"] == 1
    assert verify_chain(await store.audit_entries()).ok
    assert "notification_sent_from_journal" in log.events()
    assert journal.entries() == []  # compacted: the outbox holds the outcome now


async def test_kill_before_the_250_resends_once_marked_possible_duplicate(files: Files) -> None:
    store = files.store()
    [nid] = await _intend(store)

    def dies(_mail: OutgoingMail) -> Exception | None:
        raise _Killed  # the server may have queued it; no reply reached us

    with pytest.raises(_Killed):
        await _sender(store, files.journal(), RecordingMailer(fail_with=dies)).send_due()
    files.crash()

    store, mailer = files.store(), RecordingMailer()
    sender = _sender(store, files.journal(), mailer)
    recovered = await sender.recover()
    await sender.send_due(everything=True)

    assert recovered == 0
    assert [(m.plan.notification_id, m.possible_duplicate) for m in mailer.sent] == [(nid, True)]
    assert len(await _sent_facts(store, nid)) == 1


async def test_recovery_sends_only_in_doubt_rows_without_a_journal_entry(files: Files) -> None:
    store = files.store()
    ids = await _intend(store, Role.SAFETY_OFFICER, Role.INVESTIGATOR)
    assert len(ids) == 2
    for nid in ids:
        await store.mark_sending(nid, at=T0)
    journaled = JournaledSend(ids[0], 1, "250 2.0.0 Ok: queued as KEPT", T0 + timedelta(seconds=1))
    files.journal().record([journaled])
    files.crash()

    store, mailer = files.store(), RecordingMailer()
    journal = files.journal()
    sender = _sender(store, journal, mailer)
    await sender.recover()
    await sender.send_due(everything=True)

    assert [(m.plan.notification_id, m.possible_duplicate) for m in mailer.sent] == [(ids[1], True)]
    rows = {UUID(r["notification_id"]): r for r in await store.notifications()}
    assert rows[ids[0]]["smtp_reply"] == "250 2.0.0 Ok: queued as KEPT"
    assert rows[ids[0]]["sent_at"] == journaled.at.isoformat()  # the time of the 250
    # The recovered fact is the one the live path would have chained: built from the
    # journal entry alone (time of the 250, attempt, reply), not from the time of recovery.
    [fact] = await _sent_facts(store, ids[0])
    assert fact["event_id"] == str(uuid5(ids[0], "sent"))
    assert _at(fact["recorded_at"]) == _at(fact["occurred_at"]) == journaled.at
    payload = fact["payload"]
    assert (payload["attempt"], payload["smtp_reply"]) == (1, "250 2.0.0 Ok: queued as KEPT")
    assert [len(await _sent_facts(store, nid)) for nid in ids] == [1, 1]
    assert verify_chain(await store.audit_entries()).ok
    assert [s.notification_id for s in journal.entries()] == [ids[1]]  # only the new 250


def _at(value: object) -> datetime:
    return datetime.fromisoformat(str(value))


async def test_in_doubt_row_is_checked_against_the_journal_before_each_send(files: Files) -> None:
    store = files.store()
    [nid] = await _intend(store)
    await store.mark_sending(nid, at=T0)
    journal, mailer, log = files.journal(), RecordingMailer(), _Log()
    sender = _sender(store, journal, mailer, log)
    # Confirmed after start-up recovery ran (e.g. the sender loop restarted in-process).
    await sender.recover()
    journal.record([JournaledSend(nid, 1, "250 late", T0)])

    await sender.send_due(everything=True)

    assert mailer.sent == []
    [row] = await store.notifications()
    assert (row["status"], row["smtp_reply"]) == ("sent", "250 late")
    assert "notification_sent_from_journal" in log.events()


async def test_the_250_is_journaled_before_the_outbox_commit(files: Files) -> None:
    store = files.store()
    journal = files.journal()
    [nid] = await _intend(store)
    seen: list[JournaledSend | None] = []
    original = store.record_outcomes

    async def record_outcomes(outcomes: Sequence[AttemptOutcome]) -> int:
        seen.extend(journal.find(o.notification_id) for o in outcomes)
        return await original(outcomes)

    store.record_outcomes = record_outcomes  # type: ignore[method-assign]
    await _sender(store, journal, RecordingMailer()).send_due()

    [entry] = seen
    assert entry is not None
    assert (entry.notification_id, entry.attempt, entry.smtp_reply) == (
        nid, 1, "250 2.0.0 Ok: queued as MEM1",
    )  # fmt: skip
    [fact] = await _sent_facts(store, nid)
    assert _at(fact["recorded_at"]) == entry.at


async def test_journal_is_compacted_once_it_reaches_the_threshold(files: Files) -> None:
    store = files.store()
    journal = files.journal()
    await _intend(store, Role.SAFETY_OFFICER, Role.INVESTIGATOR)
    sender = _sender(store, journal, RecordingMailer(), compact_at=3)
    await sender.send_due()
    assert len(journal.entries()) == 2  # below the threshold: kept

    await _intend(store)
    await sender.send_due()

    assert journal.entries() == []
    assert await store.unsent_count() == 0


async def test_a_failed_journal_write_still_records_the_outcome() -> None:
    store, log, mailer = InMemoryNotificationStore(), _Log(), RecordingMailer()
    [nid] = await _intend(store)

    await _sender(store, InMemorySentJournal(fail=True), mailer, log).send_due()

    [row] = await store.notifications()
    assert (row["notification_id"], row["status"]) == (str(nid), "sent")
    assert "sent_journal_write_failed" in log.events()
