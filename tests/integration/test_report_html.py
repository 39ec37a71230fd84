"""The DSMB report's HTML renders in headless Chromium without console errors, and prints.

Chromium is Debian's package (`make test` installs it when /usr/bin/chromium is missing);
playwright drives that binary directly, so no browser is downloaded.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, sync_playwright

from services.report.adapters.duckdb_source import DuckDBLogSource
from services.report.adapters.writer import HTML_FILE, FileReportWriter
from services.report.app import issue_dsmb_report
from services.report.core.config import ReportConfig
from tests.unit.report.eventlog import build_event_log, running_clock
from tools.demo.generator import HISTORIC_START, generate_feed

pytestmark = pytest.mark.integration
AS_OF = datetime(2024, 9, 1, tzinfo=UTC)


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").is_file():
        found = "/usr/bin/chromium"
    assert found, "Chromium is not installed: `apt-get install -y chromium` (make test does)"
    return found


@pytest.fixture(scope="module")
def browser(report_html: Path) -> Iterator[Browser]:
    # The report is built first: sync playwright runs an event loop that asyncio.run refuses.
    del report_html
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    feed = generate_feed(participants=16, start=HISTORIC_START)
    log = build_event_log(feed, tmp_path_factory.mktemp("log"), recorded_at=running_clock())
    out = tmp_path_factory.mktemp("report")
    issue_dsmb_report(
        source=DuckDBLogSource(log), writer=FileReportWriter(), config=ReportConfig(),
        as_of=AS_OF, out=out, now=datetime(2024, 9, 2, tzinfo=UTC),
    )  # fmt: skip
    return out / HTML_FILE


def test_renders_without_console_errors(browser: Browser, report_html: Path) -> None:
    page = browser.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in {"error", "warning"}:
            problems.append(f"{message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))

    page.goto(report_html.as_uri(), wait_until="load")

    assert problems == []
    assert page.title().startswith("DSMB safety report NCT01724398 as of 2024-09-01T00:00:00Z")
    assert page.locator("svg.chart").count() == 7  # MELD + six AESI cumulative-incidence charts
    assert page.locator("section.table").count() == 11
    assert page.locator("#stopping_rules tbody tr").count() == 16
    # Every chart drew one line per arm.
    assert page.locator("svg.chart polyline").count() == 7 * 4
    page.close()


def test_prints_to_pdf(browser: Browser, report_html: Path) -> None:
    page = browser.new_page()
    page.goto(report_html.as_uri(), wait_until="load")

    pdf = page.pdf(format="A4", print_background=True)

    assert pdf.startswith(b"%PDF")
    assert pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") + pdf.count(b"/Type/Page") > 1
    page.close()
