"""The console under the embedded, authenticated NATS of `safetymon up`: the per-user grants let
notify publish its facts and the console follow all three streams (and nothing else is needed)."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import httpx
import pytest

from safetymon.runner import ALL_SERVICES
from services.console.service import ConsoleService
from tests.factories import enrolment, sae, unique
from tools.stack import start_stack

pytestmark = pytest.mark.e2e


async def test_an_sae_reaches_the_console_through_the_embedded_servers_grants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "SAFETYMON_NATS_URL",
        "SAFETYMON_SMTP_HOST",
        "SAFETYMON_SMTP_PORT",
        "SAFETYMON_NAMESPACE",
        "SAFETYMON_ROUTING",
    ):
        monkeypatch.delenv(name, raising=False)
    token = "emb-" + secrets.token_urlsafe(24)
    stack = await start_stack(
        ALL_SERVICES, data_dir=tmp_path / "data", http_port=0, bootstrap_token=token
    )
    try:
        console = stack.services["console"]
        assert isinstance(console, ConsoleService)
        participant = unique("EMB")
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{stack.http_port}",
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            response = await client.post(
                "/v1/events",
                json=[
                    enrolment(participant_id=participant, site_id="S01"),
                    sae(participant_id=participant, site_id="S01"),
                ],
            )
        assert response.status_code in (200, 201, 207), response.text
        async with asyncio.timeout(60):
            while True:
                counts = {
                    source: len(
                        await console.projection.events(
                            sources=(source,), participant_id=participant
                        )
                    )
                    for source in ("fact", "signal", "notify")
                }
                if counts["notify"] and counts["signal"] and counts["fact"] == 2:
                    break
                await asyncio.sleep(0.1)
        async with httpx.AsyncClient(base_url=console.url) as client:
            assert (await client.get("/signin")).status_code == 200
    finally:
        await stack.stop()
