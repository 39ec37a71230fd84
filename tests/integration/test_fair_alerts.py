"""A safety alert does not wait behind other participants' data (real NATS, real SMTP).

The rules fold each participant's facts in log order and nothing else waits on that order:
an SAE for a fresh participant, posted after thousands of other participants' lab results,
is emailed while those results are still being folded. Outcomes are compared in order (the
backlog still pending when the email is accepted), never against wall-clock limits.
"""

from __future__ import annotations

import asyncio

import httpx
import nats
import pytest

from safetymon.runner import Stack
from schemas import RULES_DURABLE, Subjects
from tests.conftest import SmtpServer
from tests.credentials import AUTH
from tests.factories import EXPECTED_PER_SITE, enrolment, lab, sae, unique

pytestmark = pytest.mark.integration

BACKLOG = 6_000
S02_PARTICIPANTS = 60


async def _post(client: httpx.AsyncClient, items: object) -> httpx.Response:
    response = await client.post("/v1/events", json=items, timeout=120)
    assert response.status_code == 200, response.text[:300]
    return response


async def _rules_backlog(nats_url: str, namespace: str) -> int:
    """Facts the rules consumer has not yet acknowledged (in its window or not yet read)."""
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().consumer_info(Subjects(namespace).facts_stream, RULES_DURABLE)
    finally:
        await nc.close()
    return int((info.num_pending or 0) + (info.num_ack_pending or 0))


async def test_an_sae_is_emailed_before_another_sites_lab_backlog_is_folded(
    stack: Stack, smtp_server: SmtpServer, nats_url: str, namespace: str
) -> None:
    others = [unique("BULK") for _ in range(S02_PARTICIPANTS)]
    fresh = unique("URGENT")
    labs = [
        lab(participant_id=others[n % len(others)], site_id="S02", value=0.5 + (n % 9) / 10)
        for n in range(BACKLOG)
    ]
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{stack.http_port}", headers=AUTH
    ) as client:
        await _post(client, [enrolment(participant_id=p, site_id="S02") for p in others])
        await _post(client, enrolment(participant_id=fresh, site_id="S01"))
        for start in range(0, BACKLOG, 1_500):
            await _post(client, labs[start : start + 1_500])
        await _post(client, sae(participant_id=fresh, site_id="S01"))

        mails = await smtp_server.recorder.wait_for(len(EXPECTED_PER_SITE["S01"]), timeout=120)
        pending_at_email = await _rules_backlog(nats_url, namespace)

    assert {r for m in mails for r in m.rcpt_tos} == EXPECTED_PER_SITE["S01"]
    assert all(fresh in str(m.message["Subject"]) for m in mails)
    assert pending_at_email > BACKLOG // 4, (
        f"only {pending_at_email} of {BACKLOG} facts were still pending: the SAE waited"
    )
    # Nothing is lost: the backlog is folded to the end, and no other email was sent than
    # SAE-01's page and VB-01's non-paging reply to it (the report is a bleed).
    await stack.settled(300)
    assert await _rules_backlog(nats_url, namespace) == 0
    await asyncio.sleep(0.2)
    assert len(smtp_server.recorder.snapshot()) == 2 * len(EXPECTED_PER_SITE["S01"])
