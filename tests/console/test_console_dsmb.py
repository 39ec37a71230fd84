"""The DSMB pages in Chromium: build a report as of a date, list it, open it; others refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from kit.auth import Role, TokenStore
from kit.embedded_http import EmbeddedHttpServer
from services.console.config import Settings
from services.console.main import build_app as build_console
from services.report.adapters.http_api import build_http_app
from services.report.main import build_app as build_report
from tests.console.test_console_browser import Problems, browser
from tests.unit.report.fixture_feed import AS_OF, build_fixture_log

pytestmark = pytest.mark.integration
__all__ = ["browser"]  # the fixture, shared


@pytest.fixture
async def dsmb_console(
    tmp_path: Path, nats_url: str, namespace: str, notify_stream_cleanup: None
) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A console whose DSMB pages talk to a real report API (on a socket) over a fixture log."""
    del notify_stream_cleanup
    tokens = TokenStore(tmp_path / "tokens.json")
    secrets = {
        role: tokens.create(f"t-{role}", Role(role), None)[1] for role in ("dsmb", "auditor")
    }
    event_log = await asyncio.to_thread(build_fixture_log, tmp_path / "log")
    service, root = build_report(), tmp_path / "reports"

    async def on_demand(as_of: datetime) -> dict[str, Any]:
        return await asyncio.to_thread(service.build_into, event_log, as_of=as_of, root=root)

    api = build_http_app(root=root, tokens=tokens, on_demand=on_demand)
    reports = EmbeddedHttpServer(api, host="127.0.0.1", port=0, name="report-http")
    port = await reports.start()
    console = build_console(
        Settings(
            data_dir=tmp_path,
            nats_url=nats_url,
            namespace=namespace,
            reports_url=f"http://127.0.0.1:{port}",
        )
    )
    await console.start()
    yield console.url, secrets
    await console.stop()
    await reports.stop()


async def test_a_dsmb_member_builds_lists_and_opens_a_report(
    dsmb_console: tuple[str, dict[str, str]], browser: Browser
) -> None:
    url, secrets = dsmb_console
    problems = Problems()
    page = problems.watch(await (await browser.new_context()).new_page())
    await page.goto(f"{url}/signin")
    await page.get_by_label("Access token").fill(secrets["dsmb"])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="DSMB reports")).to_be_visible()
    await expect(page.locator("tbody")).to_contain_text("No reports yet.")

    await page.get_by_label("Build a report as of (UTC midnight)").fill(f"{AS_OF:%Y-%m-%d}")
    await page.get_by_role("button", name="Build report").click()

    await expect(page.get_by_role("status")).to_contain_text("Built the report")
    await page.get_by_role("link", name="Open report").click()
    await expect(page).to_have_title(
        f"DSMB safety report NCT01724398 as of {AS_OF:%Y-%m-%dT%H:%M:%SZ}", timeout=30_000
    )
    assert await page.locator("svg.chart").count() > 0
    assert problems.seen == []


async def test_other_roles_get_no_dsmb_pages(
    dsmb_console: tuple[str, dict[str, str]], browser: Browser
) -> None:
    url, secrets = dsmb_console
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{url}/signin")
    await page.get_by_label("Access token").fill(secrets["auditor"])
    await page.get_by_role("button", name="Sign in").click()
    response = await page.goto(f"{url}/dsmb")
    assert response is not None and response.status == 403
