"""Screenshots of the safety console: inbox, alert and participant pages -> docs/screenshots/.

Self-contained: starts a private nats-server (the venv's, JetStream in a temporary
directory, `sync_interval: always`), the services and the console in this process on a
temporary data directory, posts a short synthetic course (pseudonymous codes, times relative
to now so the clocks read naturally), acknowledges one alert, and drives Debian's Chromium
through playwright. Run: `python scripts/screenshots.py [OUT_DIR]`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, async_playwright

from services.console.config import Settings
from services.console.main import build_app
from services.console.service import ConsoleService
from tools.stack import start_stack

ROOT = Path(__file__).resolve().parent.parent
TRIAL = "NCT01724398"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
#: (LOINC, unit, four results): bilirubin, INR, creatinine, haemoglobin.
LABS = (
    ("1975-2", "mg/dL", (6.0, 6.8, 7.9, 8.4)),
    ("6301-6", "{INR}", (2.1, 2.3, 2.6, 2.5)),
    ("2160-0", "mg/dL", (1.1, 1.2, 1.6, 1.9)),
    ("718-7", "g/dL", (11.0, 10.6, 10.1, 9.2)),
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_nats(store: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    store.mkdir(parents=True)
    config = store / "nats.conf"
    config.write_text(
        f'listen: "127.0.0.1:{port}"\njetstream {{ store_dir: "{store}", sync_interval: always }}\n'
    )
    binary = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or "nats-server"
    process = subprocess.Popen([binary, "-c", str(config)])  # noqa: S603 - our own binary
    for _ in range(100):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process, f"nats://127.0.0.1:{port}"
        time.sleep(0.05)  # nothing else runs yet
    process.kill()
    raise RuntimeError("nats-server did not start")


def _item(
    event_type: str, payload: dict[str, Any], pid: str, site: str, at: datetime
) -> dict[str, Any]:
    return {
        "event_type": event_type,
        "trial_id": TRIAL,
        "site_id": site,
        "participant_id": pid,
        "occurred_at": at.isoformat(),
        "source": "edc",
        "source_ref": secrets.token_hex(8),
        "payload": payload,
    }


def _course(pid: str, site: str) -> list[dict[str, Any]]:
    start = NOW - timedelta(days=5)
    items = [_item("participant_enrolled", {"arm": "D", "baseline_meld": 22}, pid, site, start)]
    items.append(
        _item(
            "treatment_administered",
            {"treatment": "uc_msc_infusion", "dose_cells_per_kg": 1e6},
            pid,
            site,
            start + timedelta(days=1, hours=2),
        )
    )
    items.append(
        _item(
            "treatment_administered",
            {"treatment": "plasma_exchange", "volume_ml": 3000.0},
            pid,
            site,
            start + timedelta(days=2, hours=2),
        )
    )
    for day in range(4):
        for loinc, unit, values in LABS:
            payload = {"loinc": loinc, "result": {"value": values[day], "unit": unit}}
            when = start + timedelta(days=day + 1)
            items.append(_item("lab_result_recorded", payload, pid, site, when) | {"source": "lab"})
    return items


def _sae(pid: str, site: str, at: datetime) -> dict[str, Any]:
    payload = {
        "ae_ref": secrets.token_hex(4),
        "term": "Oesophageal varices haemorrhage",
        "ctcae_grade": 3,
        "seriousness_criteria": ["hospitalisation"],
        "relatedness_uc_msc": "possible",
        "relatedness_plasma_exchange": "not_related",
        "expectedness": "expected",
        "outcome": "recovering",
        "awareness_at": at.isoformat(),
    }
    return _item("adverse_event_reported", payload, pid, site, at)


async def _sae_signal(console: ConsoleService, pid: str) -> str:
    """The id of the participant's SAE signal, once the console has it."""
    async with asyncio.timeout(60):
        while True:
            events = await console.projection.events(sources=("signal",), participant_id=pid)
            for event in events:
                if event.body["payload"]["category"] == "sae":
                    return str(event.signal_id)
            await asyncio.sleep(0.1)


async def _shoot(console_url: str, token: str, pages: dict[str, str], out: Path) -> None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        page: Page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(f"{console_url}/signin")
        await page.get_by_label("Access token").fill(token)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url("**/inbox")
        for name, path in pages.items():
            await page.goto(f"{console_url}{path}", wait_until="networkidle")
            await page.screenshot(path=str(out / f"{name}.png"), full_page=True)
            print(out / f"{name}.png")
        await browser.close()


async def _run(out: Path, tmp: Path) -> None:
    token = "shots-" + secrets.token_urlsafe(24)
    process, nats_url = _start_nats(tmp / "nats")
    os.environ.update(
        SAFETYMON_NATS_URL=nats_url, SAFETYMON_NAMESPACE="shots", SAFETYMON_CLOCK_TICK_SECONDS="0"
    )
    os.environ.pop("SAFETYMON_SMTP_HOST", None)  # the stack's own sink takes the emails
    stack = await start_stack(data_dir=tmp / "data", http_port=0, bootstrap_token=token)
    notify_port = getattr(stack.services["notify"], "http_port", None)
    console = build_app(
        Settings(
            data_dir=tmp / "data",
            nats_url=nats_url,
            namespace="shots",
            bootstrap_token=token,
            notify_url=f"http://127.0.0.1:{notify_port}",
        )
    )
    try:
        await console.start()
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{stack.http_port}",
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            for pid, site in (("P-0107", "S01"), ("P-0212", "S02")):
                response = await client.post("/v1/events", json=_course(pid, site))
                response.raise_for_status()
            sae_at = NOW - timedelta(hours=3)
            for item in (_sae("P-0107", "S01", sae_at), _sae("P-0212", "S02", sae_at)):
                (await client.post("/v1/events", json=item)).raise_for_status()
        alert = await _sae_signal(console, "P-0107")
        other = await _sae_signal(console, "P-0212")
        await stack.settled(60)  # notify has routed the alert before it is acknowledged
        async with httpx.AsyncClient() as client:
            (
                await client.post(
                    f"http://127.0.0.1:{notify_port}/v1/signals/{other}/ack",
                    json={"reason": "Site called; patient stable"},
                    headers={"Authorization": f"Bearer {token}"},
                )
            ).raise_for_status()
        await stack.settled(60)
        await asyncio.sleep(1.0)  # the trail relay polls; let the last delivery facts arrive
        pages = {
            "inbox": "/inbox",
            "alert": f"/alerts/{alert}",
            "participant": "/participants/P-0107",
        }
        await _shoot(console.url, token, pages, out)
    finally:
        await console.stop()
        await stack.stop()
        process.terminate()
        process.wait(10)


def main() -> None:
    """Write inbox.png, alert.png and participant.png into the given directory."""
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="safetymon-shots-") as tmp:
        asyncio.run(_run(out, Path(tmp)))


if __name__ == "__main__":
    main()
