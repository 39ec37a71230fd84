"""The console in real Chromium over the whole stack: sign-in, live inbox, acknowledge, sites.

Chromium is Debian's package driven by playwright (as the DSMB report test does); the stack
is the tests' in-process ingest, rules and notify on the real NATS server and SMTP sink.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.console.conftest import Console
from tests.credentials import AUTH
from tests.factories import enrolment, lab, sae, submission, unique
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
    statuses = {result["status"] for result in response.json()["results"]}
    assert statuses == {"accepted"}, response.text


class Problems:
    """Console errors and warnings, page errors and failed requests of every page watched."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def _failed(self, url: str, failure: str | None) -> None:
        # Leaving a page cuts its event stream and any fragment read in flight: not a failure.
        live = urlsplit(url).path.endswith(("/events", "/rows", "/log"))  # a query may follow
        if not (live and failure == "net::ERR_ABORTED"):
            self.seen.append(f"request failed: {url} {failure}")

    def watch(self, page: Page) -> Page:
        page.on(
            "console",
            lambda m: (
                self.seen.append(f"{m.type}: {m.text}") if m.type in {"error", "warning"} else None
            ),
        )
        page.on("pageerror", lambda e: self.seen.append(f"pageerror: {e}"))
        page.on("requestfailed", lambda r: self._failed(r.url, r.failure))
        return page


async def _signed_in(browser: Browser, console: Console, name: str, problems: Problems) -> Page:
    page = problems.watch(await (await browser.new_context()).new_page())
    await page.goto(f"{console.url}/signin")
    await page.get_by_label("Access token").fill(console.tokens[name])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Alert inbox")).to_be_visible()
    # The heading shows before the page's script has loaded; leaving now would abort it.
    await page.wait_for_load_state()
    return page


async def _signal_of(console: Console, participant: str) -> str:
    """The participant's SAE signal, once the console has projected it."""
    async with asyncio.timeout(30):
        while True:
            events = await console.service.projection.events(
                sources=("signal",), participant_id=participant
            )
            for event in events:
                if event.body["payload"]["category"] == "sae":
                    return str(event.signal_id)
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
    rows = page.locator("#inbox-rows tr", has_text=participant)
    row = rows.filter(has_text="Serious adverse event")
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
    assert page.url.endswith(f"/alerts/{signal_id}")
    assert signal_id in await _open_alert_ids(console)

    await page.get_by_label("Reason (recorded in the audit trail)").fill("Seen; calling the site")
    await page.get_by_label("Assign to").fill("Dr Chen")
    await page.get_by_role("button", name="Acknowledge: I take responsibility").click()
    await expect(page.get_by_role("status")).to_contain_text("Acknowledged")
    log = page.locator("#delivery-log")
    await expect(log.locator("tr.log-alert_acknowledged")).to_contain_text(
        "by Dr Chen (assigned by token:so1): Seen; calling the site", timeout=_WAIT_MS
    )
    await expect(log.locator("#alert-state")).to_have_text("acknowledged")
    assert signal_id not in await _open_alert_ids(console)  # the escalator looks no more
    notify: Any = console.stack.services["notify"]
    trail = await notify.delivery_log(signal_id=signal_id)
    acks = [row for row in trail if row["event_type"] == "alert_acknowledged"]
    assert len(acks) == 1, acks
    assert problems.seen == []


def _course(participant: str, site: str) -> list[dict[str, Any]]:
    """Enrolment, one UC-MSC infusion, one plasma exchange and labs over four days."""
    envelope = {"participant_id": participant, "site_id": site}
    items = [enrolment(arm="D", occurred_at="2024-02-26T08:00:00Z", **envelope)]
    for day, treatment in (
        (27, {"treatment": "uc_msc_infusion", "dose_cells_per_kg": 1e6}),
        (28, {"treatment": "plasma_exchange", "volume_ml": 3000.0}),
    ):
        when = f"2024-02-{day}T09:00:00Z"
        items.append(submission("treatment_administered", treatment, occurred_at=when, **envelope))
    for day, (bili, inr, creat, hb) in enumerate(
        ((6.0, 2.1, 1.1, 11.0), (6.8, 2.3, 1.2, 10.6), (7.5, 2.4, 1.4, 10.1), (7.1, 2.2, 1.3, 9.8))
    ):
        when = f"2024-02-{26 + day}T07:00:00Z"
        for loinc, value, unit in (
            ("1975-2", bili, "mg/dL"),
            ("6301-6", inr, "{INR}"),
            ("2160-0", creat, "mg/dL"),
            ("718-7", hb, "g/dL"),
        ):
            items.append(lab(loinc, value, unit, occurred_at=when, **envelope))
    return items


async def test_participant_page_shows_the_course_with_procedures_and_charts(
    console: Console, browser: Browser
) -> None:
    problems = Problems()
    participant = unique("CON")
    await _post(console, _course(participant, "S01"))
    await _post(
        console, sae(participant_id=participant, site_id="S01", occurred_at="2024-02-29T10:00:00Z")
    )
    signal_id = await _signal_of(console, participant)
    page = await _signed_in(browser, console, "inv-s01", problems)

    await page.goto(f"{console.url}/participants/{participant}")
    await expect(page.get_by_role("heading", level=1)).to_contain_text(participant)
    await expect(page.locator("svg.chart")).to_have_count(5)
    await expect(page.locator("figcaption", has_text="MELD")).to_contain_text("4 result(s)")
    body = page.locator("main")
    for text in ("UC-MSC infusion", "Plasma exchange", "Total bilirubin: 128"):
        await expect(body).to_contain_text(text)
    await page.goto(f"{console.url}/alerts/{signal_id}")
    await expect(page.locator("ol.timeline li.procedure")).to_have_count(2)
    await expect(page.locator("svg.chart line[stroke-dasharray]")).to_have_count(10)
    assert problems.seen == []


async def test_the_audit_page_verifies_notifys_trail_from_the_stream_as_notify_does(
    console: Console, browser: Browser
) -> None:
    participant = unique("CON")
    await _post(
        console,
        [
            enrolment(participant_id=participant, site_id="S02"),
            sae(participant_id=participant, site_id="S02"),
        ],
    )
    await _signal_of(console, participant)
    await console.stack.settled(30)
    notify: Any = console.stack.services["notify"]
    own = await notify.verify_audit()
    async with asyncio.timeout(20):  # the relay and the console catch up with the trail
        while (await console.service.projection.counts()).get("notify", 0) < own.length:
            await asyncio.sleep(0.05)
    problems = Problems()
    page = await _signed_in(browser, console, "aud1", problems)

    await page.get_by_role("link", name="Audit").click()

    check = page.locator("#trail-check")
    await expect(check).to_contain_text(f"Verified: {own.length} entries")
    await expect(check).to_contain_text(own.head)
    assert problems.seen == []
    investigator = await _signed_in(browser, console, "inv-s02", Problems())
    response = await investigator.goto(f"{console.url}/audit")
    assert response is not None and response.status == 403


_UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter((el) => el.labels === null || el.labels.length === 0).map((el) => el.outerHTML)"""


async def test_keyboard_only_sign_in_and_every_control_is_labelled(
    console: Console, browser: Browser
) -> None:
    participant = unique("CON")
    await _post(
        console,
        [
            enrolment(participant_id=participant, site_id="S01"),
            sae(participant_id=participant, site_id="S01"),
        ],
    )
    signal_id = await _signal_of(console, participant)
    problems = Problems()
    page = problems.watch(await (await browser.new_context()).new_page())
    await page.goto(f"{console.url}/signin")

    await page.keyboard.type(console.tokens["so1"])  # the token field has the focus
    await page.keyboard.press("Enter")

    await expect(page.get_by_role("heading", name="Alert inbox")).to_be_visible()
    await page.wait_for_load_state()  # as in _signed_in: let the inbox's script finish loading
    for path in ("/inbox", f"/alerts/{signal_id}", f"/participants/{participant}", "/signin"):
        await page.goto(f"{console.url}{path}")
        assert await page.evaluate(_UNLABELLED) == [], path
    await page.goto(f"{console.url}/alerts/{signal_id}")
    await page.get_by_label("Reason (recorded in the audit trail)").focus()
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "assign_to"
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.textContent")
    assert focused.startswith("Acknowledge")
    assert problems.seen == []
