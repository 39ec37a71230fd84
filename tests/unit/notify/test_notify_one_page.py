"""One page per person per causing fact: SAE-01 pages, a second U0 of the same fact does not.

The pure decision (core/pages.py) and the intake with the real DuckDB store: one batch, two
batches, a restart between them, the alert rows (acknowledgement, escalation).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from uuid import UUID, uuid4

from schemas import Role, SignalRaised, Urgency
from services.notify.adapters.duckdb_store import DuckDBNotificationStore
from services.notify.adapters.memory import InMemoryNotificationStore, ManualClock, RecordingMailer
from services.notify.app import Sender, SignalIntake
from services.notify.app.alerts import Escalator
from services.notify.core.pages import PageRef, keys_of, one_page_each, page_ref
from services.notify.core.plan import NotificationPlan, plan_notifications
from services.notify.ports import NotificationStore
from tests.unit.notify.factories import (
    DSMB_CHAIR,
    S01_INVESTIGATORS,
    SAFETY_OFFICER,
    make_routing,
    make_signal,
)

INV_SO = (Role.INVESTIGATOR, Role.SAFETY_OFFICER)
PAGED = {SAFETY_OFFICER, *S01_INVESTIGATORS}


def pair(fact: UUID | None = None) -> tuple[SignalRaised, SignalRaised]:
    """SAE-01 and VB-01 raised by one fact (the report that made a bleed serious)."""
    fact = fact or uuid4()
    sae = make_signal(rule_id="SAE-01", recipients=INV_SO)
    bleed = make_signal(
        rule_id="VB-01", category="bleeding", title="Variceal / GI bleeding AE", recipients=INV_SO
    )
    return (
        sae.model_copy(update={"causation_id": fact}),
        bleed.model_copy(update={"causation_id": fact}),
    )


def decide(*signals: SignalRaised, earlier=None) -> dict[str, tuple[NotificationPlan, ...]]:
    routing = make_routing()
    batch = [(s, plan_notifications(s, routing)) for s in signals]
    decided = one_page_each(batch, earlier or {})
    return {s.payload.rule_id: plans for s, plans in zip(signals, decided, strict=True)}


def is_page(plan: NotificationPlan) -> bool:
    return plan.subject.startswith("[U0 ") and "same_event_as" not in plan.context


def test_sae01_pages_and_the_other_u0_of_the_fact_goes_on_its_thread() -> None:
    sae, bleed = pair()

    for order in ((sae, bleed), (bleed, sae)):  # the batch order does not decide
        plans = decide(*order)

        assert {p.address for p in plans["SAE-01"] if is_page(p)} == PAGED
        assert not any(is_page(p) for p in plans["VB-01"])
        pages = {p.address: p for p in plans["SAE-01"]}
        for plan in plans["VB-01"]:
            assert plan.references == pages[plan.address].message_id
            assert plan.subject.startswith("[SAME EVENT BLEEDING - paged as SAE-01] P-0042")
            assert plan.urgency is Urgency.U0  # the clinical urgency, said in the body
            assert plan.context["same_event_as"] == {
                "rule": "SAE-01",
                "signal_id": str(sae.event_id),
            }
            assert plan.page_key is None
            assert "acknowledging that page covers" in plan.context["notes"][-1]
        assert {p.page_key for p in plans["SAE-01"]} == {
            f"{sae.causation_id}|{address}" for address in PAGED
        }


def test_signals_of_different_facts_each_page() -> None:
    sae, _ = pair()
    _, bleed = pair()

    plans = decide(sae, bleed)

    assert all(is_page(p) for p in (*plans["SAE-01"], *plans["VB-01"]))


def test_a_recipient_the_page_did_not_reach_is_paged_by_the_second_signal() -> None:
    sae, bleed = pair()
    bleed = bleed.model_copy(
        update={
            "payload": bleed.payload.model_copy(update={"recipients": (*INV_SO, Role.DSMB_CHAIR)})
        }
    )

    plans = decide(sae, bleed)

    assert [p.address for p in plans["VB-01"] if is_page(p)] == [DSMB_CHAIR]
    assert is_page(plans["VB-01"][0])  # the alert's first notification is a page


def test_a_page_recorded_by_an_earlier_batch_wins_over_any_order() -> None:
    sae, bleed = pair()
    routing = make_routing()
    first = [(bleed, plan_notifications(bleed, routing))]
    [bleed_plans] = one_page_each(first, {})
    earlier = {
        p.page_key: _ref(p) for p in bleed_plans if p.page_key is not None
    }  # what the store answers after VB-01 arrived alone

    later = [(sae, plan_notifications(sae, routing))]
    assert set(keys_of(later)) == set(earlier)
    [sae_plans] = one_page_each(later, earlier)
    # And a redelivered VB-01 keeps being the page it was.
    [again] = one_page_each(first, earlier)

    assert not any(is_page(p) for p in sae_plans)
    assert {p.references for p in sae_plans} == {p.message_id for p in bleed_plans}
    assert again == bleed_plans


def _ref(plan: NotificationPlan) -> PageRef:
    assert plan.page_key is not None
    return page_ref(
        plan.page_key, plan.notification_id, plan.signal_id, plan.message_id, plan.context
    )


class _Log:
    def info(self, event: str, **kw: object) -> None: ...
    def warning(self, event: str, **kw: object) -> None: ...
    def error(self, event: str, **kw: object) -> None: ...


def _intake(store: NotificationStore, clock: ManualClock) -> SignalIntake:
    return SignalIntake(
        store=store, routing=make_routing(), clock=clock, log=_Log(), consumer="notify-router"
    )


async def _rows(store: NotificationStore) -> list[dict]:
    return await store.notifications()


def _pages_per_address(rows: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        if row["subject"].startswith("[U0 "):
            counts[row["address"]] = counts.get(row["address"], 0) + 1
    return counts


async def test_one_batch_or_two_with_a_restart_gives_one_page_per_person(tmp_path: Path) -> None:
    clock = ManualClock()
    for split in (False, True):
        path = tmp_path / f"notify-{split}.duckdb"
        store = DuckDBNotificationStore(path)
        store.open()
        sae, bleed = pair()
        if split:
            await _intake(store, clock)([sae])
            store.close()  # a restart between the two batches
            store = DuckDBNotificationStore(path)
            store.open()
            await _intake(store, clock)([bleed])
            await _intake(store, clock)([sae, bleed])  # a redelivery adds nothing
        else:
            await _intake(store, clock)([bleed, sae])
        try:
            rows = await _rows(store)
            assert _pages_per_address(rows) == dict.fromkeys(PAGED, 1), split
            assert {r["address"] for r in rows if r["signal_id"] == str(bleed.event_id)} == PAGED
            alerts = [a.state.signal_id for a in await store.open_alerts()]
            assert alerts == [sae.event_id]  # VB-01 has no alert of its own to escalate
        finally:
            store.close()


async def test_the_page_escalates_alone_and_its_acknowledgement_closes_the_event(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    store = DuckDBNotificationStore(tmp_path / "notify.duckdb")
    store.open()
    try:
        sae, bleed = pair()
        await _intake(store, clock)([sae, bleed])
        escalator = Escalator(
            store=store, routing=make_routing(), clock=clock, log=_Log(), delay=timedelta(hours=1)
        )
        clock.advance(61 * 60)

        assert await escalator.tick() == 1
        log = await store.delivery_log(signal_id=sae.event_id)
        assert [r["level"] for r in log if r["event_type"] == "alert_escalated"] == [1]
        assert not [
            r
            for r in await store.delivery_log(signal_id=bleed.event_id)
            if r["event_type"] == "alert_escalated"
        ]

        await store.acknowledge(sae.event_id, by="so", reason="on it", via="cli", at=clock.now())
        clock.advance(2 * 3600)

        assert await escalator.tick() == 0
        assert await store.open_alerts() == []
    finally:
        store.close()


async def test_the_in_memory_store_answers_the_same(tmp_path: Path) -> None:
    clock, store = ManualClock(), InMemoryNotificationStore()
    sae, bleed = pair()

    await _intake(store, clock)([sae])
    await _intake(store, clock)([bleed])

    assert _pages_per_address(await _rows(store)) == dict.fromkeys(PAGED, 1)


class _Renderer:
    def render(self, plan: NotificationPlan) -> tuple[str, str]:
        return "\n".join(plan.context.get("notes", ())), "<p>-</p>"


def _sender(store: NotificationStore, clock: ManualClock, mailer: RecordingMailer) -> Sender:
    return Sender(
        store=store, mailer=mailer, renderer=_Renderer(), clock=clock, log=_Log(),
        ack_link=lambda plan, _now: f"https://ack.example/{plan.notification_id}",
    )  # fmt: skip


async def test_planned_together_the_page_goes_first_and_the_finding_replies_to_it() -> None:
    clock, store, mailer = ManualClock(), InMemoryNotificationStore(), RecordingMailer()
    sae, bleed = pair()
    await _intake(store, clock)([bleed, sae])

    await _sender(store, clock, mailer).send_due()

    first: dict[str, str] = {}
    for mail in mailer.sent:  # in send order
        plan = mail.plan
        if plan.signal_id == sae.event_id:
            assert plan.context["ack_url"]
            first[plan.address] = plan.message_id
        else:
            assert plan.references == first[plan.address], "the page went out before"
            assert plan.context["ack_url"] is None
            assert "acknowledging that page covers this finding" in mail.text
    assert sorted(first) == sorted(PAGED)
    assert len(mailer.sent) == 2 * len(PAGED)
    assert {r["status"] for r in await store.notifications()} == {"sent"}


async def test_after_the_page_went_out_the_finding_is_a_reply_without_an_ack_link() -> None:
    clock, store, mailer = ManualClock(), InMemoryNotificationStore(), RecordingMailer()
    sae, bleed = pair()
    await _intake(store, clock)([sae])
    await _sender(store, clock, mailer).send_due()
    pages = {m.plan.address: m.plan.message_id for m in mailer.sent}

    await _intake(store, clock)([bleed])
    await _sender(store, clock, mailer).send_due()

    replies = mailer.sent[len(pages) :]
    assert sorted(m.plan.address for m in replies) == sorted(PAGED)
    for mail in replies:
        assert mail.plan.signal_id == bleed.event_id
        assert mail.plan.references == pages[mail.plan.address]
        assert mail.plan.context["ack_url"] is None
        assert not mail.plan.subject.startswith("[U0 ")


async def test_a_later_facts_page_goes_out_before_an_earlier_facts_same_event_replies(
    tmp_path: Path,
) -> None:
    """Same-event replies wait for every page of their urgency, in both stores.

    Ordered by time alone, the next SAE's page queued behind the previous bleed's replies
    (bench/alert_under_bulk.py: bulk p99 1.1 s instead of 0.8 s).
    """
    duckdb_store = DuckDBNotificationStore(tmp_path / "notify.duckdb")
    duckdb_store.open()
    try:
        for store in (duckdb_store, InMemoryNotificationStore()):
            clock = ManualClock()
            sae_a, bleed_a = pair()
            await _intake(store, clock)([sae_a, bleed_a])
            clock.advance(60)
            sae_b, _ = pair()
            await _intake(store, clock)([sae_b])

            pending = [p.plan for p in await store.pending(due_by=None, limit=100)]
            order = [(p.signal_id, "same_event_as" in p.context) for p in pending]
            pages = [sid for sid, same in order if not same]
            first_reply = next(i for i, (_, same) in enumerate(order) if same)

            assert set(pages) == {sae_a.event_id, sae_b.event_id}
            assert all(not same for _, same in order[:first_reply])
            assert {sid for sid, same in order[first_reply:]} == {bleed_a.event_id}
    finally:
        duckdb_store.close()
