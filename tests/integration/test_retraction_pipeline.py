"""A correction travels the whole pipeline: HTTP -> ingest -> rules -> retraction -> email."""

from __future__ import annotations

import httpx
import pytest

from safetymon.runner import Stack
from tests.conftest import SmtpServer
from tests.credentials import AUTH
from tests.factories import EXPECTED_PER_SITE, enrolment, sae, submission, unique

pytestmark = pytest.mark.integration


async def _post(stack: Stack, items: object) -> httpx.Response:
    # The ingest API is authenticated; the test stack accepts the tests' token.
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{stack.http_port}", headers=AUTH
    ) as client:
        return await client.post("/v1/events", json=items)


async def test_correcting_an_sae_to_not_serious_emails_a_retraction_to_the_same_people(
    stack: Stack, smtp_server: SmtpServer
) -> None:
    """§0.2: the SAE-01 page is followed by a RETRACTED notice, same urgency, same people."""
    participant = unique("RET")
    recipients = EXPECTED_PER_SITE["S01"]
    await _post(stack, enrolment(participant_id=participant, site_id="S01"))
    report = sae(participant_id=participant, site_id="S01")
    posted = await _post(stack, report)
    await smtp_server.recorder.wait_for(len(recipients))
    not_serious = {**report["payload"], "seriousness_criteria": []}
    correction = submission(
        "fact_corrected",
        {
            "supersedes_event_id": posted.json()["results"][0]["event_id"],
            "reason": "not admitted: outpatient visit",
            "replacement": not_serious,
        },
        participant_id=participant,
        site_id="S01",
    )

    answer = await _post(stack, correction)
    # SAE-01's page, VB-01's non-paging reply (the report is a bleed: VB-01 stands when the
    # bleed is no longer serious), then SAE-01's retraction.
    mails = await smtp_server.recorder.wait_for(3 * len(recipients))
    await stack.settled(30)

    assert answer.json()["accepted"] == 1
    mine = [m for m in mails if participant in str(m.message["Subject"])]
    retracted = [m for m in mine if "RETRACTED" in str(m.message["Subject"])]
    assert sorted(r for m in retracted for r in m.rcpt_tos) == sorted(recipients)
    assert all("U0" in str(m.message["Subject"]) for m in retracted)
    assert len(mine) == 3 * len(recipients)
