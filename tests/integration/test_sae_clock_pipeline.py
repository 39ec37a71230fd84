"""SAE-02 end to end: ingest's clock ticks reach the rules; an overdue SAE report is emailed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from safetymon.runner import Stack
from tests.conftest import SmtpServer
from tests.credentials import AUTH
from tests.factories import EXPECTED_PER_SITE, enrolment, sae, unique
from tools.stack import start_stack

pytestmark = pytest.mark.integration


@pytest.fixture
async def ticking_stack(
    stack_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stack]:
    """The three services with ingest appending a clock tick every second."""
    monkeypatch.setenv("SAFETYMON_CLOCK_TICK_SECONDS", "1")
    running = await start_stack(data_dir=stack_environment, http_port=0)
    yield running
    await running.stop()


async def test_an_sae_not_reported_to_the_sponsor_in_24_h_is_emailed_overdue(
    ticking_stack: Stack, smtp_server: SmtpServer
) -> None:
    """Aware 2024-03-01T10:00Z, no SAEReportedToSponsor: the next tick sends SAE-02 U0 overdue."""
    participant = unique("CLK")
    recipients = EXPECTED_PER_SITE["S01"]
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{ticking_stack.http_port}", headers=AUTH
    ) as client:
        await client.post("/v1/events", json=enrolment(participant_id=participant, site_id="S01"))
        await client.post("/v1/events", json=sae(participant_id=participant, site_id="S01"))

    # SAE-01's page, VB-01's reply to it (the report is a bleed), then SAE-02 overdue.
    mails = await smtp_server.recorder.wait_for(3 * len(recipients))

    overdue = [m for m in mails if "overdue" in str(m.message["Subject"])]
    assert sorted(r for m in overdue for r in m.rcpt_tos) == sorted(recipients)
    assert all(participant in str(m.message["Subject"]) for m in overdue)
