"""The console in real Chromium over the whole stack: sign-in, live inbox, acknowledge, sites.

Chromium is Debian's package driven by playwright (as the DSMB report test does); the stack
is the tests' in-process ingest, rules and notify on the real NATS server and SMTP sink.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.console.conftest import Console
from tests.credentials import AUTH
from tests.factories import enrolment, sae, unique
from tests.integration.test_report_html import chromium_path

pytestmark = pytest.mark.integration
_WAIT_MS = 15_000  # generous for a loaded machine; the measured latency is printed


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=["--no-sandbox"]
        )
        yield launched
        await launched.close()


async def _post(console: Console, items: object) -> None:
    url = f"http://127.0.0.1:{console.stack.http_port}"
    async with httpx.AsyncClient(base_url=url, headers=AUTH) as client:
        response = await client.post("/v1/events", json=items)
    assert response.status_code in (200, 201, 207), response.text


class Problems:
    """Console errors and warnings, page errors and failed requests of every page watched."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def watch(self, page: Page) -> Page:
        page.on(
            "console",
            lambda m: (
                self.seen.append(f"{m.type}: {m.text}") if m.type in {"error", "warning"} else None
            ),
        )
        page.on("pageerror", lambda e: self.seen.append(f"pageerror: {e}"))
        # The event stream is cut when a page navigates away: not a failure of the page.
        page.on(
            "requestfailed",
            lambda r: (
                None if r.url.endswith("/events") else self.seen.append(f"request failed: {r.url}")
            ),
        )
        return page


async def _signed_in(browser: Browser, console: Console, name: str, problems: Problems) -> Page:
    page = problems.watch(await (await browser.new_context()).new_page())
    await page.goto(f"{console.url}/signin")
    await page.get_by_label("Access token").fill(console.tokens[name])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Alert inbox")).to_be_visible()
    return page


async def _signal_of(console: Console, participant: str) -> str:
    async with asyncio.timeout(30):
        while True:
            events = await console.service.projection.events(
                sources=("signal",), participant_id=participant
            )
            if events:
                return str(events[0].signal_id)
            await asyncio.sleep(0.05)


async def _open_alert_ids(console: Console) -> set[str]:
    notify: Any = console.stack.services["notify"]
    return {str(alert.state.signal_id) for alert in await notify.open_alerts()}


async def test_sae_appears_live_and_is_acknowledged_from_the_console(
    console: Console, browser: Browser
) -> None:
    problems = Problems()
    page = await _signed_in(browser, console, "so1", problems)
    cookie = next(c for c in await page.context.cookies() if c["name"] == "console_session")
    assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
    await page.evaluate("window.__notReloaded = true")
    participant = unique("CON")
    await _post(console, enrolment(participant_id=participant, site_id="S01"))

    started = time.monotonic()
    await _post(console, sae(participant_id=participant, site_id="S01"))
    row = page.locator("#inbox-rows tr.urgency-U0", has_text=participant)
    await expect(row).to_be_visible(timeout=_WAIT_MS)
    print(f"SAE visible in the inbox {time.monotonic() - started:.2f} s after the POST")
    assert await page.evaluate("window.__notReloaded") is True
    await expect(row.locator(".badge")).to_have_text("U0")
    await expect(row).to_contain_text("open")

    await row.get_by_role("link").first.click()
    await expect(page.get_by_role("heading", level=2, name="Why it fired")).to_be_visible()
    await expect(page.locator("table.values")).to_contain_text("Relatedness to UC-MSC")
    await expect(page.locator("table.values")).not_to_contain_text("relatedness_uc_msc")
    signal_id = await _signal_of(console, participant)
    assert signal_id in await _open_alert_ids(console)

    await page.get_by_label("Reason (recorded in the audit trail)").fill("Seen; calling the site")
    await page.get_by_role("button", name="Acknowledge: I take responsibility").click()
    await expect(page.get_by_role("status")).to_contain_text("Acknowledged")
    log = page.locator("#delivery-log")
    await expect(log.locator("tr.log-alert_acknowledged")).to_contain_text(
        "by token:so1: Seen; calling the site", timeout=_WAIT_MS
    )
    await expect(log.locator("#alert-state")).to_have_text("acknowledged")
    assert signal_id not in await _open_alert_ids(console)  # the escalator looks no more
    notify: Any = console.stack.services["notify"]
    trail = await notify.delivery_log(signal_id=signal_id)
    acks = [row for row in trail if row["event_type"] == "alert_acknowledged"]
    assert len(acks) == 1, acks
    assert problems.seen == []
