"""NotificationStore contract: one suite for the in-memory and the DuckDB store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from schemas import Role, Urgency
from services.notify.adapters.duckdb_store import DuckDBNotificationStore
from services.notify.adapters.memory import InMemoryNotificationStore
from services.notify.core import audit
from services.notify.core.failover import failover_plans
from services.notify.core.plan import plan_notifications
from services.notify.ports import (
    AttemptOutcome,
    DeadLetter,
    IntakeBatch,
    NotificationStore,
    SignalNotifications,
)
from tests.unit.notify.factories import make_routing, make_signal

NOW = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
CONSUMER = "notify-router"


def _item(signal=None) -> SignalNotifications:
    signal = signal or make_signal()
    plans = plan_notifications(signal, make_routing())
    return SignalNotifications(
        signal.event_id, plans, tuple(audit.intended_fact(p, now=NOW) for p in plans)
    )


def _batch(*items: SignalNotifications, dead: tuple[DeadLetter, ...] = ()) -> IntakeBatch:
    return IntakeBatch(CONSUMER, NOW, items, dead)


def _sent(plan, attempt: int = 1, at: datetime = NOW) -> AttemptOutcome:
    reply = "250 2.0.0 Ok: queued as ABC123"
    fact = audit.sent_fact(plan, attempt=attempt, smtp_reply=reply, now=at)
    return AttemptOutcome(plan.notification_id, "sent", attempt, at, fact, smtp_reply=reply)


def _retry(plan, attempt: int, retry_at: datetime) -> AttemptOutcome:
    error = "DeliveryDeferredError: 451 4.3.0 later"
    fact = audit.failed_fact(plan, attempt=attempt, error=error, permanent=False, now=NOW)
    return AttemptOutcome(
        plan.notification_id, "retry", attempt, NOW, fact, error=error, next_attempt_at=retry_at
    )


def _failed(plan) -> AttemptOutcome:
    error = "DeliveryRefusedError: 550 5.1.1 no such user"
    fact = audit.failed_fact(plan, attempt=1, error=error, permanent=True, now=NOW)
    return AttemptOutcome(plan.notification_id, "failed", 1, NOW, fact, error=error)


Reopen = Callable[[], Awaitable[NotificationStore]]


class NotificationStoreContract:
    """Behaviour every NotificationStore must show; subclasses supply `store` and `reopen`."""

    async def test_intended_then_sent(self, store: NotificationStore) -> None:
        item = _item()

        result = await store.record_intake(_batch(item))
        applied = await store.record_outcomes([_sent(item.plans[0])])

        assert (result.new_signals, result.notifications, applied) == ((item.signal_id,), 3, 1)
        rows = {r["notification_id"]: r for r in await store.notifications(item.signal_id)}
        first = rows[str(item.plans[0].notification_id)]
        assert (first["status"], first["attempts"]) == ("sent", 1)
        assert first["smtp_reply"] == "250 2.0.0 Ok: queued as ABC123"
        assert first["sent_at"] == NOW.isoformat()
        assert sorted(r["status"] for r in rows.values()) == ["intended", "intended", "sent"]
        assert await store.unsent_count() == 2

    async def test_second_record_of_same_tracking_is_a_noop(self, store: NotificationStore) -> None:
        item = _item()
        await store.record_intake(_batch(item))
        before = (await store.notifications(), await store.audit_entries())

        again = await store.record_intake(_batch(item))

        assert (again.new_signals, again.duplicates, again.notifications) == (
            (),
            (item.signal_id,),
            0,
        )
        assert (await store.notifications(), await store.audit_entries()) == before

    async def test_same_signal_twice_in_one_batch_is_recorded_once(self, store) -> None:
        item, other = _item(), _item()

        result = await store.record_intake(_batch(item, other, item))

        assert result.new_signals == (item.signal_id, other.signal_id)
        assert result.duplicates == (item.signal_id,)
        assert len(await store.notifications()) == 6

    async def test_restart_lists_intended_not_sent(self, store, reopen: Reopen) -> None:
        item = _item()
        await store.record_intake(_batch(item))
        await store.record_outcomes([_sent(item.plans[0])])

        store = await reopen()
        pending = await store.pending(due_by=None, limit=100)

        assert {p.plan.notification_id for p in pending} == {
            p.notification_id for p in item.plans[1:]
        }
        restored = {p.plan.notification_id: p.plan for p in pending}
        for plan in item.plans[1:]:
            got = restored[plan.notification_id]
            assert (got.subject, got.message_id, got.address, got.role) == (
                plan.subject, plan.message_id, plan.address, plan.role,
            )  # fmt: skip
            assert got.context == json.loads(json.dumps(plan.context))

    async def test_a_send_without_outcome_stays_in_doubt_across_restarts(
        self, store, reopen: Reopen
    ) -> None:
        item = _item()
        await store.record_intake(_batch(item))
        handed, other = item.plans[0], item.plans[1]
        await store.mark_sending(handed.notification_id, at=NOW)
        await store.mark_sending(other.notification_id, at=NOW)
        await store.record_outcomes([_sent(other)])

        store = await reopen()
        doubtful = await store.in_doubt()

        # Handed to the server with no outcome: in doubt (the sent journal decides); the one
        # with an outcome and the one never handed over are not.
        assert [p.plan.notification_id for p in doubtful] == [handed.notification_id]
        assert all(p.in_doubt for p in doubtful)
        await store.record_outcomes([_sent(handed)])
        assert await store.in_doubt() == []

    async def test_sent_notification_is_never_pending_or_updated_again(self, store) -> None:
        item = _item()
        await store.record_intake(_batch(item))
        plan = item.plans[0]
        await store.record_outcomes([_sent(plan)])

        applied = await store.record_outcomes([_sent(plan, attempt=2), _failed(plan)])

        assert applied == 0
        pending = await store.pending(due_by=None, limit=100)
        assert plan.notification_id not in {p.plan.notification_id for p in pending}
        assert len(await store.audit_entries()) == 4

    async def test_temporary_failure_stays_pending_with_attempts_and_due_time(self, store) -> None:
        item = _item()
        await store.record_intake(_batch(item))
        plan = item.plans[0]
        retry_at = NOW + timedelta(seconds=30)

        await store.record_outcomes([_retry(plan, 1, retry_at)])

        due_now = await store.pending(due_by=NOW, limit=100)
        assert plan.notification_id not in {p.plan.notification_id for p in due_now}
        due_later = await store.pending(due_by=retry_at, limit=100)
        assert {p.plan.notification_id: p.attempts for p in due_later}[plan.notification_id] == 1
        assert await store.next_attempt_at() == NOW
        row = next(r for r in await store.notifications() if r["attempts"] == 1)
        assert (row["status"], row["next_attempt_at"]) == ("intended", retry_at.isoformat())

    async def test_permanent_failure_is_not_pending(self, store) -> None:
        item = _item()
        await store.record_intake(_batch(item))

        await store.record_outcomes([_failed(item.plans[0])])

        rows = {r["notification_id"]: r for r in await store.notifications()}
        row = rows[str(item.plans[0].notification_id)]
        assert (row["status"], row["last_error"]) == (
            "failed",
            "DeliveryRefusedError: 550 5.1.1 no such user",
        )
        assert len(await store.pending(due_by=None, limit=100)) == 2

    async def test_pending_respects_limit(self, store) -> None:
        await store.record_intake(_batch(_item(), _item()))

        assert len(await store.pending(due_by=NOW, limit=4)) == 4

    async def test_dead_letters_are_kept_once(self, store) -> None:
        letter = DeadLetter(7, "t.rules.signal_raised.v1", 1, "payload: Field required", b"{}")

        await store.record_intake(_batch(dead=(letter,)))
        await store.record_intake(_batch(dead=(letter,)))

        assert await store.dead_letters() == [letter]

    async def test_audit_chain_verifies_across_restarts(self, store, reopen: Reopen) -> None:
        item = _item()
        await store.record_intake(_batch(item))
        store = await reopen()
        await store.record_outcomes([_sent(item.plans[0]), _retry(item.plans[1], 1, NOW)])
        await store.record_intake(_batch(_item()))

        entries = await store.audit_entries()
        check = audit.verify_chain(entries)

        assert (check.ok, check.length) == (True, 8)
        assert [e.seq for e in entries] == list(range(1, 9))
        kinds = [json.loads(e.wire)["event_type"] for e in entries]
        assert kinds[3:5] == ["notification_sent", "notification_failed"]

    async def test_tampered_audit_row_is_detected(self, store, tamper) -> None:
        await store.record_intake(_batch(_item()))
        entries = await store.audit_entries()
        wire = json.loads(entries[1].wire)
        wire["payload"]["address"] = "attacker@evil.example"

        store = await tamper(store, 2, json.dumps(wire))

        check = audit.verify_chain(await store.audit_entries())
        assert (check.ok, check.bad_seq) == (False, 2)

    async def test_digest_rows_wait_for_their_time_even_on_recovery(self, store) -> None:
        """U2 held for a digest is neither pending nor unsent until the digest is due."""
        due = datetime.now(UTC) + timedelta(hours=12)
        signal = make_signal(urgency=Urgency.U2, recipients=(Role.SAFETY_OFFICER,))
        plans = tuple(
            replace(plan, digest_key=f"daily:{plan.address}:x", not_before=due)
            for plan in plan_notifications(signal, make_routing())
        )
        facts = tuple(audit.intended_fact(p, now=NOW) for p in plans)
        await store.record_intake(_batch(SignalNotifications(signal.event_id, plans, facts)))

        before = await store.pending(due_by=None, limit=10, now=due - timedelta(seconds=1))
        at_due = await store.pending(due_by=None, limit=10, now=due)

        assert before == []
        assert await store.unsent_count() == 0
        assert [(p.plan.notification_id, p.plan.digest_key) for p in at_due] == [
            (plans[0].notification_id, plans[0].digest_key)
        ]

    async def test_permanent_failure_records_its_follow_ups_with_it(self, store) -> None:
        """5xx: the next route and the alarm are intended in the same step as the failure."""
        item = _item()
        await store.record_intake(_batch(item))
        failed = item.plans[0]
        follow = failover_plans(failed, make_routing(), error="550")
        outcome = replace(
            _failed(failed), follow_ups=follow,
            follow_up_facts=tuple(audit.intended_fact(p, now=NOW) for p in follow),
        )  # fmt: skip

        applied = await store.record_outcomes([outcome])

        assert applied == 1
        pending = {p.plan.notification_id for p in await store.pending(due_by=None, limit=10)}
        assert {p.notification_id for p in follow} <= pending
        assert failed.notification_id not in pending
        kinds = [e.event_type for e in await store.audit_entries()]
        assert kinds[-1 - len(follow) :] == ["notification_failed"] + [
            "notification_intended"
        ] * len(follow)


class TestInMemoryNotificationStore(NotificationStoreContract):
    @pytest.fixture
    def store(self) -> InMemoryNotificationStore:
        return InMemoryNotificationStore()

    @pytest.fixture
    def reopen(self, store: InMemoryNotificationStore) -> Reopen:
        async def _same() -> NotificationStore:
            return store

        return _same

    @pytest.fixture
    def tamper(self):
        async def _tamper(
            store: InMemoryNotificationStore, seq: int, wire: str
        ) -> NotificationStore:
            store.tamper(seq, wire)
            return store

        return _tamper


class TestDuckDBNotificationStore(NotificationStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[DuckDBNotificationStore]:
        self._open: list[DuckDBNotificationStore] = []
        first = self._opened(tmp_path / "notify.duckdb")
        yield first
        for store in self._open:
            store.close()

    def _opened(self, path: Path) -> DuckDBNotificationStore:
        store = DuckDBNotificationStore(path)
        store.open()
        self._open.append(store)
        return store

    @pytest.fixture
    def reopen(self, store: DuckDBNotificationStore) -> Reopen:
        async def _reopen() -> NotificationStore:
            for opened in self._open:
                opened.close()
            self._open.clear()
            return self._opened(store.path)

        return _reopen

    @pytest.fixture
    def tamper(self):
        async def _tamper(store: DuckDBNotificationStore, seq: int, wire: str) -> NotificationStore:
            # An attacker with write access to the file drops the guard and edits a row.
            store.close()
            self._open.remove(store)
            con = duckdb.connect(str(store.path))
            con.execute("DROP TRIGGER audit_trail_no_update ON audit_trail")
            con.execute("UPDATE audit_trail SET wire = ? WHERE seq = ?", [wire, seq])
            con.close()
            return self._opened(store.path)

        return _tamper

    async def test_audit_trail_refuses_update_and_delete(self, store) -> None:
        await store.record_intake(_batch(_item()))

        for statement in ("UPDATE audit_trail SET wire = 'x'", "DELETE FROM audit_trail"):
            with pytest.raises(duckdb.Error, match="append-only"):
                await store._worker.run(lambda con, s=statement: con.execute(s))

    async def test_intake_is_one_transaction(self, store) -> None:
        """A failure part-way leaves no tracking row behind, so the redelivery is processed."""
        item = _item()
        broken = SignalNotifications(item.signal_id, item.plans + item.plans[:1], item.audit)

        with pytest.raises(Exception, match="notify store"):
            await store.record_intake(_batch(broken))

        result = await store.record_intake(_batch(item))
        assert result.new_signals == (item.signal_id,)
        assert audit.verify_chain(await store.audit_entries()).length == 3
