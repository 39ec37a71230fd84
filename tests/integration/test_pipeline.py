"""The whole pipeline in one process: HTTP -> ingest -> JetStream -> rules -> notify -> SMTP."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from safetymon.runner import Stack
from tests.conftest import SmtpServer
from tests.credentials import AUTH
from tests.factories import EXPECTED_PER_SITE, enrolment, sae, submission, unique

pytestmark = pytest.mark.integration


async def _post(stack: Stack, items: object) -> httpx.Response:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{stack.http_port}", headers=AUTH
    ) as client:
        return await client.post("/v1/events", json=items)


async def test_an_sae_reaches_each_right_recipient_exactly_once(
    stack: Stack, smtp_server: SmtpServer
) -> None:
    """SAE-01 is U0 to the site's investigators and the safety officer; nobody else.

    The report is a bleed, so VB-01 fires at U0 too: each person gets one page (SAE-01)
    and VB-01 as a non-paging reply to it (one page per person per fact).
    """
    participant = unique("E2E")
    await _post(stack, enrolment(participant_id=participant, site_id="S01", arm="B"))

    response = await _post(stack, sae(participant_id=participant, site_id="S01"))
    await smtp_server.recorder.wait_for(2 * len(EXPECTED_PER_SITE["S01"]))
    await stack.settled(30)

    assert response.json()["accepted"] == 1
    mails = smtp_server.recorder.snapshot()
    pages = [m for m in mails if str(m.message["Subject"]).startswith("[U0 SAE]")]
    replies = [m for m in mails if str(m.message["Subject"]).startswith("[SAME EVENT ")]
    assert sorted(r for m in pages for r in m.rcpt_tos) == sorted(EXPECTED_PER_SITE["S01"])
    assert sorted(r for m in replies for r in m.rcpt_tos) == sorted(EXPECTED_PER_SITE["S01"])
    assert len(mails) == len(pages) + len(replies)
    assert participant in str(pages[0].message["Subject"])


async def test_the_same_sae_posted_twice_sends_no_second_email(
    stack: Stack, smtp_server: SmtpServer
) -> None:
    """A resubmission is a duplicate at ingest; nothing downstream happens again."""
    item = sae(participant_id=unique("E2E"), site_id="S02")

    first = await _post(stack, item)
    # SAE-01's page and VB-01's same-event reply to each recipient (the report is a bleed).
    await smtp_server.recorder.wait_for(2 * len(EXPECTED_PER_SITE["S02"]))
    second = await _post(stack, item)
    await stack.settled(30)
    await asyncio.sleep(0.5)

    assert first.json()["results"][0]["status"] == "accepted"
    assert second.json()["results"][0]["status"] == "duplicate"
    assert len(smtp_server.recorder.snapshot()) == 2 * len(EXPECTED_PER_SITE["S02"])


async def test_investigators_never_receive_another_sites_participant(
    stack: Stack, smtp_server: SmtpServer
) -> None:
    """Routing by site: S02's SAE never reaches S01's investigators, and vice versa."""
    s01, s02 = unique("E2E"), unique("E2E")

    await _post(
        stack, [sae(participant_id=s01, site_id="S01"), sae(participant_id=s02, site_id="S02")]
    )
    await smtp_server.recorder.wait_for(
        len(EXPECTED_PER_SITE["S01"]) + len(EXPECTED_PER_SITE["S02"])
    )
    await stack.settled(30)

    for mail in smtp_server.recorder.snapshot():
        subject = str(mail.message["Subject"])
        for rcpt in mail.rcpt_tos:
            site = "S01" if s01 in subject else "S02"
            assert rcpt in EXPECTED_PER_SITE[site], (rcpt, subject)


async def test_a_death_alerts_the_dsmb_chair_and_carries_no_phi(
    stack: Stack, smtp_server: SmtpServer
) -> None:
    """SAE-03 goes to investigators, safety officer and DSMB chair; emails carry codes only."""
    participant = unique("E2E")
    death = submission(
        "death_recorded",
        {"cause_category": "liver_failure"},
        participant_id=participant,
        site_id="S02",
    )

    await _post(stack, death)
    mails = await smtp_server.recorder.wait_for(len(EXPECTED_PER_SITE["S02"]) + 1)

    assert {r for m in mails for r in m.rcpt_tos} == EXPECTED_PER_SITE["S02"] | {
        "chair@dsmb.example"
    }
    for mail in mails:
        text = mail.raw.decode("utf-8", "replace").lower()
        assert participant.lower() in text
        assert "date of birth" not in text
        assert "dob" not in text.split()
