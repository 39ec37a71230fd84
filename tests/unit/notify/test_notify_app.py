"""App use-cases with in-memory ports: intake idempotency, sending, retries, recovery."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from schemas import Role, Urgency
from services.notify.adapters.memory import InMemoryNotificationStore, ManualClock, RecordingMailer
from services.notify.app import Sender, SendPolicy, SignalIntake
from services.notify.config import Settings
from services.notify.core.errors import (
    DeliveryDeferredError,
    DeliveryRefusedError,
    MailServerUnavailableError,
)
from services.notify.main import Deps, build_app
from services.notify.ports import OutgoingMail
from tests.unit.notify.factories import SAFETY_OFFICER, make_routing, make_signal

pytestmark = pytest.mark.filterwarnings("error")


class _Log:
    """A logger double recording (level, event, fields)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict]] = []

    def info(self, event: str, **kw: object) -> None:
        self.records.append(("info", event, kw))

    def warning(self, event: str, **kw: object) -> None:
        self.records.append(("warning", event, kw))

    def error(self, event: str, **kw: object) -> None:
        self.records.append(("error", event, kw))

    def events(self, level: str) -> list[str]:
        return [event for lvl, event, _ in self.records if lvl == level]


class Rig:
    def __init__(self, burst: int = 100) -> None:
        self.store = InMemoryNotificationStore()
        self.clock = ManualClock()
        self.mailer = RecordingMailer()
        self.log = _Log()
        self.sender = Sender(
            store=self.store,
            mailer=self.mailer,
            renderer=_Renderer(),
            clock=self.clock,
            log=self.log,
            policy=SendPolicy(base_seconds=1.0, cap_seconds=60.0, burst=burst, jitter=lambda: 1.0),
        )
        self.intake = SignalIntake(
            store=self.store,
            routing=make_routing(),
            clock=self.clock,
            log=self.log,
            consumer="notify-router",
            on_recorded=self.sender.wake,
        )


class _Renderer:
    def render(self, plan) -> tuple[str, str]:
        return f"text {plan.subject}", f"<p>{plan.subject}</p>"


async def test_signal_is_recorded_intended_then_sent_to_each_recipient_once() -> None:
    rig = Rig()
    signal = make_signal()

    result = await rig.intake([signal])
    await rig.sender.send_due()

    assert result.notifications == 3
    assert sorted(m.plan.address for m in rig.mailer.sent) == sorted(
        ["pi.s01@site1.example", "oncall.s01@site1.example", SAFETY_OFFICER]
    )
    rows = await rig.store.notifications(signal.event_id)
    assert {r["status"] for r in rows} == {"sent"}
    assert all(r["smtp_reply"].startswith("250 ") and r["attempts"] == 1 for r in rows)
    assert rig.mailer.sessions == 1  # one SMTP connection for the burst


async def test_redelivered_signal_produces_nothing_new() -> None:
    rig = Rig()
    signal = make_signal()
    await rig.intake([signal])
    await rig.sender.send_due()

    again = await rig.intake([signal, signal])
    await rig.sender.send_due(everything=True)

    assert (again.new_signals, again.duplicates, again.notifications) == (
        (),
        (signal.event_id,) * 2,
        0,
    )
    assert len(rig.mailer.sent) == 3
    assert "signal_duplicate_skipped" in rig.log.events("info")


async def test_sent_notification_is_never_sent_again_even_on_recovery() -> None:
    rig = Rig()
    await rig.intake([make_signal()])
    await rig.sender.send_due()

    await rig.sender.send_due(everything=True)

    assert len(rig.mailer.sent) == 3


async def test_temporary_refusal_is_retried_with_backoff_until_accepted() -> None:
    rig = Rig()
    refuse = {"on": True}
    rig.mailer.fail_with = lambda _m: (
        DeliveryDeferredError("451 4.3.0 later") if refuse["on"] else None
    )
    signal = make_signal(recipients=(Role.SAFETY_OFFICER,))
    await rig.intake([signal])

    await rig.sender.send_due()
    await rig.sender.send_due()  # not due yet: nothing attempted
    rig.clock.advance(1.0)
    await rig.sender.send_due()
    refuse["on"] = False
    rig.clock.advance(1.9)
    await rig.sender.send_due()  # second retry is due after 2 s, not yet
    rig.clock.advance(0.1)
    await rig.sender.send_due()

    [row] = await rig.store.notifications()
    assert (row["status"], row["attempts"]) == ("sent", 3)
    assert row["last_error"] == "DeliveryDeferredError: 451 4.3.0 later"
    assert len(rig.mailer.sent) == 1
    assert rig.log.events("warning").count("notification_retry_scheduled") == 2


async def test_u0_still_undelivered_after_three_attempts_is_logged_as_error() -> None:
    rig = Rig()
    rig.mailer.fail_with = lambda _m: DeliveryDeferredError("451 later")
    await rig.intake([make_signal(recipients=(Role.SAFETY_OFFICER,))])

    for _ in range(4):
        await rig.sender.send_due()
        rig.clock.advance(60)

    assert "notification_u0_still_undelivered" in rig.log.events("error")
    assert await rig.store.unsent_count() == 1  # never gives up on a U0


async def test_permanent_refusal_is_recorded_failed_and_logged_as_error() -> None:
    rig = Rig()
    rig.mailer.fail_with = lambda m: (
        DeliveryRefusedError("550 5.1.1 no such user") if m.plan.address == SAFETY_OFFICER else None
    )
    await rig.intake([make_signal()])

    await rig.sender.send_due()
    rig.clock.advance(3600)
    await rig.sender.send_due()

    rows = {r["address"]: r for r in await rig.store.notifications()}
    assert rows[SAFETY_OFFICER]["status"] == "failed"
    assert rows[SAFETY_OFFICER]["attempts"] == 1
    assert len(rig.mailer.sent) == 2
    assert rig.log.events("error") == ["notification_failed_permanently"]


async def test_server_down_stops_the_burst_and_holds_off() -> None:
    rig = Rig()
    rig.mailer.fail_with = lambda _m: MailServerUnavailableError("SMTPConnectError: refused")
    await rig.intake([make_signal()])

    await rig.sender.send_due()

    rows = await rig.store.notifications()
    assert sorted(r["attempts"] for r in rows) == [0, 0, 1]  # only the first one was tried
    assert "mail_server_unavailable" in rig.log.events("warning")


async def test_u0_goes_out_before_u1() -> None:
    rig = Rig()
    await rig.intake([make_signal(urgency=Urgency.U1, participant_id="P-0001")])
    await rig.intake([make_signal(urgency=Urgency.U0, participant_id="P-0002")])

    await rig.sender.send_due()

    assert [m.plan.urgency for m in rig.mailer.sent] == [Urgency.U0] * 3 + [Urgency.U1] * 3


async def test_routing_gap_is_logged_as_warning_once() -> None:
    rig = Rig()
    signal = make_signal(site_id="S03")

    await rig.intake([signal])
    await rig.intake([signal])

    assert rig.log.events("warning") == ["notification_rerouted"]


async def test_running_sender_is_woken_by_a_commit() -> None:
    rig = Rig()
    task = asyncio.create_task(rig.sender.run())
    await asyncio.sleep(0.01)

    await rig.intake([make_signal()])
    async with asyncio.timeout(1.0):
        while len(rig.mailer.sent) < 3:
            await asyncio.sleep(0.001)

    rig.sender.stop()
    await asyncio.wait_for(task, 1.0)


async def test_running_sender_recovers_what_was_intended_before_it_started() -> None:
    rig = Rig()
    await rig.intake([make_signal()])
    rig.clock.advance(-10)  # intended "in the future" of a skewed clock: recovery ignores schedule

    task = asyncio.create_task(rig.sender.run())
    async with asyncio.timeout(1.0):
        while len(rig.mailer.sent) < 3:
            await asyncio.sleep(0.001)
    rig.sender.stop()
    await asyncio.wait_for(task, 1.0)


async def test_mail_carries_the_rendered_bodies() -> None:
    rig = Rig()
    await rig.intake([make_signal(recipients=(Role.SAFETY_OFFICER,))])

    await rig.sender.send_due()

    [mail] = rig.mailer.sent
    assert isinstance(mail, OutgoingMail)
    assert mail.text.startswith("text [U0 SAE] P-0042")


def test_build_app_connects_and_opens_nothing(tmp_path) -> None:
    settings = Settings(
        data_dir=tmp_path, nats_url="nats://127.0.0.1:1", routing=tmp_path / "missing.toml"
    )

    with capture_logs() as logs:
        service = build_app(settings)

    assert service.settings is settings
    assert list(tmp_path.iterdir()) == []
    assert logs == []


def test_build_app_runs_on_the_injected_dependencies(tmp_path) -> None:
    clock, mailer = ManualClock(), RecordingMailer()
    settings = Settings(data_dir=tmp_path, nats_url="nats://127.0.0.1:1")

    service = build_app(settings, Deps(clock=clock, mailer=mailer))

    assert service.clock is clock
    assert service._adapters.mailer is mailer
    assert list(tmp_path.iterdir()) == []
