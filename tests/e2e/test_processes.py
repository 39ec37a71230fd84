"""The services as separate processes, started as a user starts them, killed and restarted.

An SAE posted over HTTP must reach each right recipient exactly once even when the rules or
notify process dies with SIGKILL mid-stream (real NATS, real SMTP server, real DuckDB files).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SmtpServer, free_port
from tests.credentials import AUTH, TEST_TOKEN
from tests.factories import EXPECTED_PER_SITE, ROUTING, sae, unique

pytestmark = pytest.mark.e2e

SAFETYMON = str(Path(sys.executable).parent / "safetymon")


class Processes:
    """Start, kill and restart `safetymon up --service X` processes."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, service: str) -> None:
        log = (self.logs / f"{service}.log").open("ab")
        self.running[service] = subprocess.Popen(
            [SAFETYMON, "up", "--service", service], env=self.env, stdout=log, stderr=log
        )

    def kill(self, service: str) -> None:
        process = self.running.pop(service)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop_all(self) -> None:
        for service in list(self.running):
            process = self.running.pop(service)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@pytest.fixture
def processes(
    tmp_path: Path, nats_url: str, namespace: str, smtp_server: SmtpServer
) -> Iterator[Processes]:
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING)
    env = {
        **os.environ,
        "SAFETYMON_DATA_DIR": str(tmp_path / "data"),
        "SAFETYMON_NATS_URL": nats_url,
        "SAFETYMON_NAMESPACE": namespace,
        "SAFETYMON_SMTP_HOST": smtp_server.host,
        "SAFETYMON_SMTP_PORT": str(smtp_server.port),
        "SAFETYMON_HTTP_PORT": str(free_port()),
        "SAFETYMON_ROUTING": str(routing),
        "SAFETYMON_LOG_FORMAT": "json",
        "SAFETYMON_BOOTSTRAP_TOKEN": TEST_TOKEN,
    }
    procs = Processes(env, tmp_path)
    yield procs
    procs.stop_all()


def _wait_http(port: int, timeout: float = 60.0) -> None:
    # A start-up wait, not a speed check: three services importing on a busy 2-core CI
    # machine have taken more than 20 s.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"ingest did not answer on port {port}")


def _wait_recorded_sent(log: Path, count: int, timeout: float = 30.0) -> None:
    """Wait until notify has recorded `count` emails as sent in its DuckDB outbox.

    It logs `notification_sent` only after that commit. Killing it between the SMTP server's
    250 and the commit (a few ms per message) would resend that one message with the same
    Message-ID: at-least-once by design (DESIGN.md principle 4), measured by the chaos run.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.read_text(errors="replace").count('"notification_sent"') >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"notify did not record {count} emails as sent")


def _post_saes(port: int, participants: list[tuple[str, str]]) -> None:
    items = [sae(participant_id=p, site_id=site) for p, site in participants]
    response = httpx.post(
        f"http://127.0.0.1:{port}/v1/events", json=items, timeout=30, headers=AUTH
    )
    assert response.json()["accepted"] == len(items), response.text


#: The emails one serious bleed gives each recipient: SAE-01's page and VB-01's
#: non-paging reply to it (one page per person per fact), told apart by subject tag.
_TAGS = ("[U0 SAE]", "[SAME EVENT BLEEDING - paged as SAE-01]")


def _deliveries(smtp_server: SmtpServer) -> Counter[tuple[str, str, str]]:
    """(recipient, participant code, subject tag) -> how many emails carried it."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for mail in smtp_server.recorder.snapshot():
        subject = str(mail.message["Subject"])
        participant = next(word for word in subject.split() if word.startswith("E2E-"))
        tag = subject[: subject.find("]") + 1]
        for rcpt in mail.rcpt_tos:
            counts[(rcpt, participant, tag)] += 1
    return counts


async def test_killed_rules_and_notify_processes_lose_nothing_and_duplicate_nothing(
    processes: Processes, smtp_server: SmtpServer
) -> None:
    """SIGKILL rules mid-stream and notify between batches: every email arrives exactly once."""
    port = int(processes.env["SAFETYMON_HTTP_PORT"])
    for service in ("ingest", "rules", "notify"):
        processes.start(service)
    _wait_http(port)
    waves = [[(unique("E2E"), "S01" if n % 2 else "S02") for n in range(12)] for _ in range(3)]
    expected = {
        (rcpt, participant, tag)
        for wave in waves
        for participant, site in wave
        for rcpt in EXPECTED_PER_SITE[site]
        for tag in _TAGS
    }
    per_wave = [
        len(_TAGS) * sum(len(EXPECTED_PER_SITE[site]) for _, site in wave) for wave in waves
    ]

    _post_saes(port, waves[0])
    await smtp_server.recorder.wait_for(per_wave[0], timeout=30)
    _wait_recorded_sent(processes.logs / "notify.log", per_wave[0])
    processes.kill("notify")
    _post_saes(port, waves[1][:6])
    processes.kill("rules")  # mid-stream: part of wave 1 may be evaluated, part not
    _post_saes(port, waves[1][6:])
    processes.start("rules")
    processes.start("notify")
    _post_saes(port, waves[2])
    await smtp_server.recorder.wait_for(sum(per_wave), timeout=60)
    time.sleep(2.0)  # long enough for a stray duplicate to show up before we count

    deliveries = _deliveries(smtp_server)
    assert set(deliveries) == expected, (set(deliveries) - expected, expected - set(deliveries))
    assert [key for key, count in deliveries.items() if count != 1] == []
