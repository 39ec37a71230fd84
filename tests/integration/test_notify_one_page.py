"""One page per person per fact, through the running notify service.

Real NATS JetStream, a real DuckDB file and aiosmtpd on a free port (the fixtures of
test_notify_alerts.py). SAE-01 and VB-01 raised by the same fact: each recipient gets one
page (ack link, escalation) and VB-01 as a non-paging reply to it, whether the two signals
come in one batch or in two with a restart of the service between them.
"""

from __future__ import annotations

import asyncio
from email import message_from_bytes, policy
from email.message import EmailMessage
from uuid import uuid4

import pytest

from schemas import Role, SignalRaised
from tests.conftest import ReceivedMail
from tests.integration import test_notify_alerts as alerts
from tests.integration.test_notify_alerts import (
    BACKUP,
    CHAIR,
    PI_A,
    SO,
    TOKEN,
    ack_url,
    eventually,
    post_ack,
    publish,
)
from tests.unit.notify.factories import make_signal

pytestmark = pytest.mark.integration
# The running-service fixtures of the alert tests, shared by name.
server, settings, running, js = alerts.server, alerts.settings, alerts.running, alerts.js

INV_SO = (Role.INVESTIGATOR, Role.SAFETY_OFFICER)


def pair() -> tuple[SignalRaised, SignalRaised]:
    """SAE-01 and VB-01 raised by one fact (the report that made a bleed serious)."""
    fact = uuid4()
    sae = make_signal(site_id="SA", rule_id="SAE-01", recipients=INV_SO)
    bleed = make_signal(
        site_id="SA", rule_id="VB-01", category="bleeding",
        title="Variceal / GI bleeding AE", recipients=INV_SO,
    )  # fmt: skip
    return (
        sae.model_copy(update={"causation_id": fact}),
        bleed.model_copy(update={"causation_id": fact}),
    )


def parsed(mail: ReceivedMail) -> EmailMessage:
    return message_from_bytes(mail.raw, policy=policy.default)  # type: ignore[return-value]


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def check_one_page_each(server, sae: SignalRaised, bleed: SignalRaised) -> None:
    for address in (SO, PI_A):
        mails = [parsed(m) for m in server.inbox.to(address)]
        [page] = [m for m in mails if m["X-Safetymon-Signal-Id"] == str(sae.event_id)]
        [same] = [m for m in mails if m["X-Safetymon-Signal-Id"] == str(bleed.event_id)]
        assert len(mails) == 2, address
        assert page["Subject"].startswith("[U0 SAE]")
        assert TOKEN.search(text_of(page)), "the page asks for an acknowledgement"
        assert same["Subject"].startswith("[SAME EVENT BLEEDING - paged as SAE-01]")
        assert same["In-Reply-To"] == same["References"] == page["Message-ID"]
        assert not TOKEN.search(text_of(same)), "no second acknowledgement link"
        assert "acknowledging that page covers this finding" in text_of(same)


async def test_two_u0_signals_of_one_fact_in_one_batch_page_each_person_once(
    settings, js, namespace, server, running
) -> None:
    quiet = settings.model_copy(update={"escalation_minutes": 60.0})
    await (await running(quiet)).stop()  # the stream and the consumer exist; nobody reads
    sae, bleed = pair()
    await publish(js, namespace, bleed)  # the order of arrival does not decide in a batch
    await publish(js, namespace, sae)

    service = await running(quiet)  # one fetch takes both
    await eventually(lambda: len(server.inbox.all()) == 4)
    await asyncio.sleep(0.5)  # nothing more comes

    assert len(server.inbox.all()) == 4
    check_one_page_each(server, sae, bleed)
    assert (await service.verify_audit()).ok


async def test_split_across_batches_and_a_restart_still_one_page(
    settings, js, namespace, server, running
) -> None:
    quiet = settings.model_copy(update={"escalation_minutes": 60.0})
    first = await running(quiet)
    sae, bleed = pair()
    await publish(js, namespace, sae)
    await eventually(lambda: len(server.inbox.all()) == 2)
    await first.stop()

    second = await running(quiet)
    await publish(js, namespace, bleed)
    await eventually(lambda: len(server.inbox.all()) == 4)
    await asyncio.sleep(0.5)

    assert len(server.inbox.all()) == 4
    check_one_page_each(server, sae, bleed)
    assert (await second.verify_audit()).ok


async def test_the_page_escalates_and_its_acknowledgement_covers_the_event(
    settings, js, namespace, server, running
) -> None:
    service = await running(settings)  # escalation after 1.5 s
    sae, bleed = pair()
    await publish(js, namespace, sae)
    await publish(js, namespace, bleed)

    await eventually(lambda: len(server.inbox.to(BACKUP)) == 1, timeout=20)
    escalated = parsed(server.inbox.to(BACKUP)[0])
    page = next(
        m for m in server.inbox.to(SO) if parsed(m)["X-Safetymon-Signal-Id"] == str(sae.event_id)
    )
    response = await post_ack(service, ack_url(page).split("token=")[1])
    await asyncio.sleep(3.5)  # past level 2: nothing more may escalate

    assert response.status_code == 200, response.text
    assert escalated["X-Safetymon-Signal-Id"] == str(sae.event_id)
    assert escalated["Subject"].startswith("[U0 SAE ESCALATED L1]")
    assert server.inbox.to(CHAIR) == []
    assert len(server.inbox.to(BACKUP)) == 1
    log = await service.delivery_log(signal_id=bleed.event_id)
    assert "alert_escalated" not in [row["event_type"] for row in log]
    assert [row["event_type"] for row in log].count("notification_sent") == 2
