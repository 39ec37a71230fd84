"""Who gets what from the console: another site's data is "not found" everywhere, POSTs need
their CSRF token, and nothing is served without a session of a console role."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser

from services.console.ports import Change
from tests.console.conftest import Console
from tests.console.test_console_browser import (
    Problems,
    _open_alert_ids,
    _post,
    _signal_of,
    _signed_in,
    browser,
)
from tests.factories import enrolment, sae, unique

pytestmark = pytest.mark.integration
__all__ = ["browser"]  # the fixture, shared


async def _two_sites(console: Console) -> tuple[tuple[str, str], tuple[str, str]]:
    """An SAE at S01 and one at S02, both projected: ((participant, signal) per site)."""
    pairs = []
    for site in ("S01", "S02"):
        participant = unique("CON")
        await _post(
            console,
            [
                enrolment(participant_id=participant, site_id=site),
                sae(participant_id=participant, site_id=site),
            ],
        )
        pairs.append((participant, await _signal_of(console, participant)))
    return pairs[0], pairs[1]


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def _client(console: Console, name: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=console.url)
    form = await client.get("/signin")
    signed = await client.post(
        "/signin", data={"csrf": _csrf(form.text), "token": console.tokens[name]}
    )
    assert signed.status_code == 303, signed.text
    return client


async def test_an_s01_investigator_never_sees_or_acts_on_s02_data(
    console: Console, browser: Browser
) -> None:
    (p1, s1), (p2, s2) = await _two_sites(console)
    problems = Problems()
    page = await _signed_in(browser, console, "inv-s01", problems)
    rows = page.locator("#inbox-rows")
    assert p1 in await rows.inner_text()
    assert p2 not in await rows.inner_text()
    await page.goto(f"{console.url}/inbox?site=S02")
    assert "No alerts." in await page.locator("#inbox-rows").inner_text()

    for path in (f"/alerts/{s2}", f"/participants/{p2}", f"/alerts/{s2}/log"):
        response = await page.goto(f"{console.url}{path}")
        assert response is not None and response.status == 404, path
        assert p2 not in await page.content()
    response = await page.goto(f"{console.url}/alerts/{s1}")
    assert response is not None and response.status == 200
    csrf = await page.locator("input[name=csrf]").first.input_value()
    refused = await page.request.post(
        f"{console.url}/alerts/{s2}/ack", form={"csrf": csrf, "reason": "not mine"}
    )
    assert refused.status == 404
    assert s2 in await _open_alert_ids(console)
    # The browser reports each deliberate 404 above, and nothing else.
    assert len(problems.seen) == 3, problems.seen
    assert all("status of 404" in problem for problem in problems.seen), problems.seen


async def _data_until(lines: Any, last: str) -> list[str]:
    """The `data:` lines of the stream up to and including `last`."""
    data: list[str] = []
    async with asyncio.timeout(20):
        async for line in lines:
            if line.startswith("data: "):
                data.append(line.removeprefix("data: "))
                if data[-1] == last:
                    return data
    raise AssertionError(data)


async def test_the_event_stream_carries_only_changes_of_the_viewers_site(
    console: Console,
) -> None:
    client = await _client(console, "inv-s01")
    try:
        async with client.stream("GET", "/events") as stream:
            lines = stream.aiter_lines()
            assert await anext(lines) == "retry: 2000"
            p2 = unique("CON")
            await _post(
                console,
                [
                    enrolment(participant_id=p2, site_id="S02"),
                    sae(participant_id=p2, site_id="S02"),
                ],
            )
            await _signal_of(console, p2)
            async with asyncio.timeout(20):
                while not await console.service.projection.events(
                    sources=("notify",), participant_id=p2
                ):
                    await asyncio.sleep(0.05)
            # S02's fact, signal and notify changes went through the hub before this marker.
            console.service.hub.publish(Change(frozenset({"marker"}), frozenset({"S01"})))
            assert await _data_until(lines, '["marker"]') == ['["marker"]']
            # And S01's own changes do arrive.
            p1 = unique("CON")
            await _post(console, sae(participant_id=p1, site_id="S01"))
            assert '["signal"]' in await _data_until(lines, '["signal"]')
    finally:
        await client.aclose()


async def test_posts_without_the_csrf_token_are_refused(console: Console, browser: Browser) -> None:
    (_, s1), _ = await _two_sites(console)
    page = await _signed_in(browser, console, "so1", Problems())
    forms: list[dict[str, str | float | bool]] = [
        {"reason": "no token"},
        {"reason": "wrong token", "csrf": "x" * 43},
    ]
    for form in forms:
        refused = await page.request.post(f"{console.url}/alerts/{s1}/ack", form=form)
        assert refused.status == 403
    assert s1 in await _open_alert_ids(console)
    signout = await page.request.post(f"{console.url}/signout", form={})
    assert signout.status == 403
    async with httpx.AsyncClient(base_url=console.url) as client:
        forged = await client.post("/signin", data={"token": console.tokens["so1"]})
    assert forged.status_code == 403
    assert "console_session" not in forged.cookies


async def test_no_session_no_data_and_submitters_have_no_console(console: Console) -> None:
    async with httpx.AsyncClient(base_url=console.url) as anonymous:
        for path in ("/inbox", "/participants/P-1", "/alerts/x"):
            response = await anonymous.get(path)
            assert (response.status_code, response.headers["location"]) == (303, "/signin")
        for path in ("/events", "/inbox/rows", "/alerts/x/log"):
            assert (await anonymous.get(path)).status_code == 401
        form = await anonymous.get("/signin")
        assert "default-src 'self'" in form.headers["content-security-policy"]
        refused = await anonymous.post(
            "/signin", data={"csrf": _csrf(form.text), "token": console.tokens["sub-s01"]}
        )
        assert refused.status_code == 401
        assert "console_session" not in refused.cookies


async def test_signing_out_ends_the_session(console: Console) -> None:
    client = await _client(console, "so1")
    try:
        inbox = await client.get("/inbox")
        assert inbox.status_code == 200
        out = await client.post("/signout", data={"csrf": _csrf(inbox.text)})
        assert out.status_code == 303
        assert (await client.get("/inbox/rows")).status_code == 401
    finally:
        await client.aclose()
