"""Issued DSMB reports reach the DSMB through notify's outbox, once per recipient.

Real components: the report service builds and publishes `ReportIssued` with its own
publisher adapter on a real JetStream; notify consumes it with its durable, records the
emails in its DuckDB outbox and audit trail and sends them to a real (aiosmtpd) server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import Message
from pathlib import Path

import nats
import nats.js.errors
import pytest

from schemas import Subjects
from schemas.subjects import NOTIFY_REPORTS_DURABLE
from services.notify.adapters.nats_requests import ack_subject, log_subject
from services.notify.config import Settings
from services.notify.main import build_app
from services.notify.service import NotifyService
from services.report.config import Settings as ReportSettings
from services.report.main import build_app as build_report_service
from tests.unit.report.fixture_feed import build_fixture_log

pytestmark = pytest.mark.integration

ROUTING = """
version = 1
[roles.safety_officer]
addresses = ["so@trial.example"]
urgencies = ["U0", "U1", "U2"]
[roles.dsmb_chair]
addresses = ["chair@dsmb.example"]
urgencies = ["U0"]
[roles.dsmb]
addresses = ["stats@dsmb.example", "member@dsmb.example"]
urgencies = ["U0"]
[roles.backup]
addresses = ["monitor@trial.example"]
urgencies = ["U0"]
"""
PERIODIC_TO = {"stats@dsmb.example", "member@dsmb.example", "chair@dsmb.example"}
AD_HOC_TO = {"chair@dsmb.example", "so@trial.example"}
BASE_URL = "https://reports.trial.example"


@pytest.fixture
def event_log(tmp_path: Path) -> Path:
    # Built outside the test's event loop: the builder runs its own.
    return build_fixture_log(tmp_path / "log")


@pytest.fixture
async def reports_stream(nats_url: str, namespace: str) -> AsyncIterator[str]:
    """The namespace's reports stream, deleted afterwards (conftest deletes the others)."""
    subjects = Subjects(namespace)
    yield subjects.reports_stream
    nc = await nats.connect(nats_url)
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await nc.jetstream().delete_stream(subjects.reports_stream)
    await nc.close()


@pytest.fixture
async def notify(
    tmp_path: Path, nats_url: str, namespace: str, smtp_server, reports_stream: str
) -> AsyncIterator[NotifyService]:
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING, encoding="utf-8")
    settings = Settings(
        data_dir=tmp_path / "data", nats_url=nats_url, namespace=namespace,
        smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_timeout=5.0,
        mail_from="safetymon@trial.example", routing=routing, retry_base_seconds=0.2,
        retry_cap_seconds=1.0, reports_base_url=BASE_URL,
    )  # fmt: skip
    service = build_app(settings)
    await service.start()
    yield service
    await service.stop()


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def _consumed(nats_url: str, stream: str, stream_seq: int) -> None:
    """Wait until notify's reports durable has acked everything up to `stream_seq`."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()

    async def acked() -> bool:
        info = await js.consumer_info(stream, NOTIFY_REPORTS_DURABLE)
        return info.ack_floor.stream_seq >= stream_seq and not info.num_ack_pending

    try:
        await _eventually(acked)
    finally:
        await nc.close()


def _by_subject(messages: list[Message], tag: str) -> list[Message]:
    return [m for m in messages if str(m["Subject"]).startswith(tag)]


async def test_issued_reports_email_each_dsmb_recipient_once(
    tmp_path: Path, event_log: Path, nats_url: str, namespace: str, smtp_server, notify
) -> None:
    reports = build_report_service(ReportSettings(nats_url=nats_url, namespace=namespace))

    issued = await reports.schedule_tick(event_log, root=tmp_path / "reports", publish=True)
    received = await smtp_server.recorder.wait_for(len(PERIODIC_TO) + len(AD_HOC_TO))

    periodic, ad_hoc = issued
    assert periodic.fact.payload.report_kind == "dsmb_periodic"
    assert ad_hoc.fact.payload.report_kind == "dsmb_ad_hoc"
    messages = [mail.message for mail in received]
    assert all(len(mail.rcpt_tos) == 1 for mail in received)
    to_periodic = _by_subject(messages, "[U3 DSMB PERIODIC REPORT] NCT01724398")
    to_ad_hoc = _by_subject(messages, "[U0 DSMB AD HOC REPORT] NCT01724398")
    assert sorted(str(m["To"]) for m in to_periodic) == sorted(PERIODIC_TO)
    assert sorted(str(m["To"]) for m in to_ad_hoc) == sorted(AD_HOC_TO)
    assert "STOPPING RULE TRIGGERED: STOP-03 arm B" in str(to_ad_hoc[0]["Subject"])
    body = to_ad_hoc[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    fact = ad_hoc.fact
    for expected in (
        f"{BASE_URL}/v1/reports/{fact.event_id}/dsmb_report.html",
        fact.payload.chain_head, f"Log position:   {fact.payload.log_position}",
        "STOP-03  arm B", "/v1/ack?token=",
    ):  # fmt: skip
        assert expected in body, expected
    # The link names a file the report service really wrote for this report id.
    assert (tmp_path / "reports" / str(fact.event_id) / "dsmb_report.html").is_file()

    # A republish through the report service is dropped by JetStream (same Nats-Msg-Id);
    # one with another message id reaches notify, whose tracking row makes it a no-op.
    await reports.announce(periodic)
    nc = await nats.connect(nats_url)
    subjects = Subjects(namespace)
    ack = await nc.jetstream().publish(
        subjects.report_subject(), json.dumps(fact.model_dump(mode="json")).encode(),
        stream=subjects.reports_stream, headers={"Nats-Msg-Id": f"{fact.event_id}-again"},
    )  # fmt: skip
    assert not ack.duplicate
    await _consumed(nats_url, subjects.reports_stream, ack.seq)
    await _eventually(lambda: _zero(notify.unsent_count()))

    assert len(smtp_server.recorder.snapshot()) == len(PERIODIC_TO) + len(AD_HOC_TO)
    rows = await notify.notifications()
    assert len(rows) == len(PERIODIC_TO) + len(AD_HOC_TO)
    assert {r["status"] for r in rows} == {"sent"}

    # `safetymon notifications --signal <report id>` and `safetymon ack` over NATS.
    log_reply = await nc.request(
        log_subject(namespace), json.dumps({"signal_id": str(fact.event_id)}).encode(), timeout=5
    )
    entries = json.loads(log_reply.data)["entries"]
    kinds = sorted(e["event_type"] for e in entries)
    assert kinds == ["notification_intended"] * 2 + ["notification_sent"] * 2
    request = {"signal_id": str(fact.event_id), "by": "dsmb-chair", "reason": "Meeting called"}
    ack_reply = await nc.request(ack_subject(namespace), json.dumps(request).encode(), timeout=5)
    assert json.loads(ack_reply.data)["acknowledgement"]["by"] == "dsmb-chair"
    periodic_ack = {**request, "signal_id": str(periodic.fact.event_id)}
    refused = await nc.request(ack_subject(namespace), json.dumps(periodic_ack).encode(), timeout=5)
    await nc.close()
    assert json.loads(refused.data)["status"] == 404  # a U3 report awaits no acknowledgement
    assert (await notify.verify_audit()).ok


async def _zero(count: Awaitable[int]) -> bool:
    return await count == 0
