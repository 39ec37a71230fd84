"""Notify service end to end against real NATS JetStream, a real DuckDB file and aiosmtpd."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from email import message_from_bytes, policy
from pathlib import Path
from uuid import uuid4

import nats
import pytest

from schemas import NOTIFY_DURABLE, Role, SignalRaised, Subjects
from services.notify.config import Settings
from services.notify.core.errors import RoutingFileError
from services.notify.main import build_app
from services.notify.service import NotifyService
from tests.conftest import free_port
from tests.unit.notify.factories import (
    DSMB_CHAIR,
    ROUTING_TOML,
    S01_INVESTIGATORS,
    SAFETY_OFFICER,
    make_signal,
)

pytestmark = pytest.mark.integration

EXPECTED = S01_INVESTIGATORS | {SAFETY_OFFICER, DSMB_CHAIR}
RECIPIENTS = (Role.INVESTIGATOR, Role.SAFETY_OFFICER, Role.DSMB_CHAIR)


@pytest.fixture
def settings(tmp_path: Path, nats_url: str, namespace: str, smtp_server) -> Settings:
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING_TOML, encoding="utf-8")
    return Settings(
        data_dir=tmp_path / "data",
        nats_url=nats_url,
        namespace=namespace,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_timeout=5.0,
        mail_from="safetymon@trial.example",
        routing=routing,
        retry_base_seconds=0.2,
        retry_cap_seconds=1.0,
        log_format="console",
    )


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[nats.js.JetStreamContext]:
    nc = await nats.connect(nats_url)
    yield nc.jetstream()
    await nc.close()


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Settings], Awaitable[NotifyService]]]:
    """Start services; whatever is still running at the end is stopped."""
    started: list[NotifyService] = []

    async def _start(settings: Settings) -> NotifyService:
        service = build_app(settings)
        await service.start()
        started.append(service)
        return service

    yield _start
    for service in started:
        await service.stop()


async def publish(js, namespace: str, signal: SignalRaised, msg_id: str | None = None) -> int:
    subjects = Subjects(namespace)
    ack = await js.publish(
        subjects.signal_subject(signal.event_type),
        json.dumps(signal.model_dump(mode="json")).encode(),
        stream=subjects.signals_stream,
        headers={"Nats-Msg-Id": msg_id or str(signal.event_id)},
    )
    assert not ack.duplicate
    return int(ack.seq)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def consumed(js, namespace: str, stream_seq: int) -> None:
    """Wait until the notify durable has acked everything up to `stream_seq`."""
    stream = Subjects(namespace).signals_stream

    async def _acked() -> bool:
        info = await js.consumer_info(stream, NOTIFY_DURABLE)
        return info.ack_floor.stream_seq >= stream_seq and not info.num_ack_pending

    await eventually(_acked)


def mails_to(recorder) -> list[str]:
    return sorted(address for mail in recorder.snapshot() for address in mail.rcpt_tos)


async def test_signal_sends_one_email_per_right_recipient(
    settings, js, namespace, smtp_server, running
) -> None:
    service = await running(settings)
    signal = make_signal(recipients=RECIPIENTS)

    started = time.monotonic()
    await publish(js, namespace, signal)
    received = await smtp_server.recorder.wait_for(len(EXPECTED))
    latency = time.monotonic() - started

    print(f"SAE publish -> 4 emails accepted: {latency * 1000:.1f} ms")
    assert latency < 5.0, f"SAE took {latency:.3f} s to reach the SMTP server"
    assert mails_to(smtp_server.recorder) == sorted(EXPECTED)
    for mail in received:
        message = message_from_bytes(mail.raw, policy=policy.default)
        assert message["X-Safetymon-Signal-Id"] == str(signal.event_id)
        assert message["Subject"].startswith("[U0 SAE] P-0042 site S01 — Serious adverse event")
        assert message.get_content_type() == "multipart/alternative"
    await eventually(lambda: _all_sent(service, signal))
    rows = await service.notifications(signal.event_id)
    assert sorted(r["address"] for r in rows) == sorted(EXPECTED)
    for row in rows:
        assert row["status"] == "sent"
        assert row["smtp_reply"].startswith("250 2.0.0 Ok: queued as TEST")
    assert (await service.verify_audit()).ok


async def _all_sent(service: NotifyService, signal: SignalRaised) -> bool:
    rows = await service.notifications(signal.event_id)
    return bool(rows) and all(r["status"] == "sent" for r in rows)


async def test_same_signal_published_twice_sends_no_second_email(
    settings, js, namespace, smtp_server, running
) -> None:
    service = await running(settings)
    signal = make_signal(recipients=RECIPIENTS)
    await publish(js, namespace, signal)
    await smtp_server.recorder.wait_for(len(EXPECTED))

    seq = await publish(js, namespace, signal, msg_id=f"{signal.event_id}:again")
    await consumed(js, namespace, seq)
    await eventually(lambda: _unsent_is(service, 0))
    await asyncio.sleep(0.3)

    assert mails_to(smtp_server.recorder) == sorted(EXPECTED)
    assert len(await service.notifications()) == len(EXPECTED)


async def _unsent_is(service: NotifyService, count: int) -> bool:
    return await service.unsent_count() == count


async def test_temporary_refusal_is_retried_then_delivered_once(
    settings, js, namespace, smtp_server, running
) -> None:
    smtp_server.recorder.refuse_with = "451 4.3.0 Try again later"
    service = await running(settings)
    signal = make_signal(recipients=RECIPIENTS)
    await publish(js, namespace, signal)

    async def _tried_twice() -> bool:
        rows = await service.notifications(signal.event_id)
        return len(rows) == len(EXPECTED) and all(r["attempts"] >= 2 for r in rows)

    await eventually(_tried_twice)
    assert smtp_server.recorder.snapshot() == []
    smtp_server.recorder.refuse_with = None
    await smtp_server.recorder.wait_for(len(EXPECTED))
    await eventually(lambda: _all_sent(service, signal))

    assert mails_to(smtp_server.recorder) == sorted(EXPECTED)
    rows = await service.notifications(signal.event_id)
    assert all(r["attempts"] >= 3 and "451" in r["last_error"] for r in rows)
    store = service.queries
    failed = [
        json.loads(e.wire)
        for e in await store.audit_entries()
        if e.event_type == "notification_failed"
    ]
    assert len(failed) >= 2 * len(EXPECTED)
    assert not any(f["permanent"] for f in failed)
    assert (await service.verify_audit()).ok


async def test_permanent_refusal_is_recorded_failed_and_not_retried(
    settings, js, namespace, smtp_server, running
) -> None:
    smtp_server.recorder.refuse_with = "550 5.7.1 Message rejected"
    service = await running(settings)
    signal = make_signal(recipients=(Role.SAFETY_OFFICER,))
    await publish(js, namespace, signal)

    async def _failed() -> bool:
        rows = await service.notifications(signal.event_id)
        return bool(rows) and rows[0]["status"] == "failed"

    await eventually(_failed)
    await asyncio.sleep(0.5)

    rows = await service.notifications(signal.event_id)
    [row] = [r for r in rows if not r["subject"].startswith("[U0 DELIVERY FAILED]")]
    assert row["attempts"] == 1
    assert "550 5.7.1" in row["last_error"]
    # The delivery-failure alarm to the safety officer bounces too (this server refuses
    # everything); it is recorded failed and raises no alarm about itself.
    [alarm] = [r for r in rows if r["subject"].startswith("[U0 DELIVERY FAILED]")]
    assert (alarm["status"], alarm["attempts"]) == ("failed", 1)


async def test_intended_but_unsent_notifications_go_out_once_after_restart(
    settings, js, namespace, smtp_server, running
) -> None:
    # First process: the SMTP server is unreachable, so everything stays 'intended'.
    down = settings.model_copy(update={"smtp_port": free_port(), "retry_base_seconds": 30.0})
    first = await running(down)
    signal = make_signal(recipients=RECIPIENTS)
    seq = await publish(js, namespace, signal)
    await consumed(js, namespace, seq)
    rows = await first.notifications(signal.event_id)
    assert len(rows) == len(EXPECTED)
    assert {r["status"] for r in rows} == {"intended"}
    await first.stop()
    assert smtp_server.recorder.snapshot() == []

    second = await running(settings)
    await smtp_server.recorder.wait_for(len(EXPECTED))
    await eventually(lambda: _all_sent(second, signal))
    await second.stop()

    third = await running(settings)  # sent is never sent again, not even on recovery
    await asyncio.sleep(0.5)
    assert mails_to(smtp_server.recorder) == sorted(EXPECTED)
    assert await third.unsent_count() == 0
    assert (await third.verify_audit()).ok


async def test_undecodable_message_is_dead_lettered_and_the_batch_goes_on(
    settings, js, namespace, smtp_server, running
) -> None:
    service = await running(settings)
    subjects = Subjects(namespace)
    await js.publish(
        subjects.signal_subject("signal_raised"), b'{"not": "a signal"}',
        stream=subjects.signals_stream, headers={"Nats-Msg-Id": str(uuid4())},
    )  # fmt: skip
    signal = make_signal(recipients=(Role.SAFETY_OFFICER,))
    seq = await publish(js, namespace, signal)

    await smtp_server.recorder.wait_for(1)
    await consumed(js, namespace, seq)

    [letter] = await service.dead_letters()
    assert letter.data == b'{"not": "a signal"}'
    assert letter.stream_seq == seq - 1


async def test_bad_routing_file_stops_startup_naming_the_key(settings) -> None:
    settings.routing.write_text(ROUTING_TOML.replace("[roles.dsmb_chair]", "[roles.dsmb_chiar]"))
    service = build_app(settings)

    with pytest.raises(RoutingFileError, match=r"roles\.dsmb_chiar"):
        await service.start()
