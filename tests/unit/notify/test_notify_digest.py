"""Digests: U2 held for one daily email per recipient at 08:00 local; U0/U1 never held."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from schemas import Role, Urgency
from services.notify.adapters.jinja_renderer import JinjaRenderer
from services.notify.adapters.memory import InMemoryNotificationStore, ManualClock, RecordingMailer
from services.notify.app import Sender, SendPolicy, SignalIntake
from services.notify.core.digest import DigestSchedule, digest_plan, into_digest
from services.notify.core.plan import plan_notifications
from tests.unit.notify.factories import SAFETY_OFFICER, make_routing, make_signal

SHANGHAI = ZoneInfo("Asia/Shanghai")
SCHEDULE = DigestSchedule(tz=SHANGHAI, hour=8, dsmb_weekday=0)
# 2024-03-01 is a Friday; 10:00 UTC is 18:00 in Shanghai.
NOW = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


class _Log:
    def info(self, event: str, **kw: object) -> None: ...
    def warning(self, event: str, **kw: object) -> None: ...
    def error(self, event: str, **kw: object) -> None: ...


def test_daily_digest_is_the_next_0800_in_the_display_zone() -> None:
    """RULES.md §0.3: daily digest 08:00 Asia/Shanghai."""
    due = SCHEDULE.due_after("daily", NOW)

    assert due == datetime(2024, 3, 2, 8, 0, tzinfo=SHANGHAI)
    assert SCHEDULE.due_after("daily", due - timedelta(seconds=1)) == due
    assert SCHEDULE.due_after("daily", due) == due + timedelta(days=1)


def test_dsmb_digest_waits_for_the_configured_weekday() -> None:
    due = SCHEDULE.due_after("dsmb", NOW)

    assert (due.weekday(), due.hour) == (0, 8)
    assert due.date().isoformat() == "2024-03-04"


def test_only_u2_and_u3_are_held_for_a_digest() -> None:
    """Quiet hours concern U2 only: U0 and U1 always go out at once."""
    routing = make_routing()
    held = {
        urgency: into_digest(
            plan_notifications(make_signal(urgency=urgency), routing)[0], SCHEDULE, now=NOW
        ).digest_key
        for urgency in (Urgency.U0, Urgency.U1, Urgency.U2)
    }

    assert held[Urgency.U0] is None
    assert held[Urgency.U1] is None
    assert held[Urgency.U2] == f"daily:{SAFETY_OFFICER}:2024-03-02T08:00:00+08:00"


def test_digest_email_lists_its_signals_and_names_their_participants() -> None:
    routing, renderer = make_routing(), JinjaRenderer()
    items = [
        into_digest(plan_notifications(make_signal(urgency=Urgency.U2, participant_id=p,
                                                   title="Hypocalcaemia <iCa>"), routing)[0],
                    SCHEDULE, now=NOW)
        for p in ("P-0003", "P-0001")
    ]  # fmt: skip

    digest = digest_plan(items)
    text, html = renderer.render(digest)

    assert digest.subject == "[U2 DIGEST] 2 signals: P-0001, P-0003 — NCT01724398 — 2024-03-02"
    assert digest_plan(list(reversed(items))).message_id == digest.message_id
    assert text.count("Hypocalcaemia <iCa>") == 2
    assert "Hypocalcaemia &lt;iCa&gt;" in html
    assert "Daily digest" in text


@pytest.fixture
def rig():
    store, clock, mailer = InMemoryNotificationStore(), ManualClock(NOW), RecordingMailer()
    sender = Sender(store=store, mailer=mailer, renderer=JinjaRenderer(), clock=clock, log=_Log(),
                    policy=SendPolicy(jitter=lambda: 0.0))  # fmt: skip
    intake = SignalIntake(store=store, routing=make_routing(), clock=clock, log=_Log(),
                          consumer="notify-router", digests=SCHEDULE)  # fmt: skip
    return store, clock, mailer, sender, intake


async def test_u2_signals_go_out_together_at_0800_and_u0_at_once(rig) -> None:
    store, clock, mailer, sender, intake = rig
    u2 = [make_signal(urgency=Urgency.U2, recipients=(Role.SAFETY_OFFICER,)) for _ in range(3)]
    u0 = make_signal(recipients=(Role.SAFETY_OFFICER,))

    await intake([*u2, u0])
    await sender.send_due(everything=True)  # a restart's recovery pass holds digests too
    immediate = list(mailer.sent)
    clock.advance((SCHEDULE.due_after("daily", NOW) - NOW).total_seconds() - 1)
    await sender.send_due()
    before_eight = len(mailer.sent)
    clock.advance(1)
    await sender.send_due()

    assert [m.plan.signal_id for m in immediate] == [u0.event_id]
    assert before_eight == 1
    [digest] = mailer.sent[1:]
    assert digest.plan.address == SAFETY_OFFICER
    assert digest.plan.subject.startswith("[U2 DIGEST] 3 signals")
    rows = await store.notifications()
    assert {r["status"] for r in rows} == {"sent"}
    assert await store.unsent_count() == 0
