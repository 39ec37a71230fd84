"""`safetymon audit serve` as a real process: auditor token in, answers out, every query logged."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from kit.auth import Role, TokenStore
from services.audit.adapters.query_log import read_query_log
from tests.conftest import free_port
from tests.factories import enrolment, lab, unique
from tests.unit.audit.bundles import write_bundle
from tests.unit.audit.logs import accepted_wires

pytestmark = pytest.mark.integration
DAY1 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """The server on a free port over one bundle; yields its URL, an auditor secret, the log."""
    pid = unique("P")
    wires = accepted_wires([
        (enrolment(participant_id=pid), DAY1),
        (lab(loinc="600-7", value=1, unit="1", participant_id=pid,
             occurred_at="2024-03-02T08:00:00Z"), DAY1 + timedelta(days=4)),
    ])  # fmt: skip
    write_bundle(tmp_path / "bundles" / "b1", wires)
    tokens = tmp_path / "tokens.json"
    _, secret = TokenStore(tokens).create("inspector-2", Role.auditor)
    port = free_port()
    env = {**os.environ, "SAFETYMON_TOKENS_FILE": str(tokens)}
    env.pop("SAFETYMON_BOOTSTRAP_TOKEN", None)
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "safetymon"), "audit", "serve",
         "--bundles", str(tmp_path / "bundles"), "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/v1/audit/bundles", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url, secret, tmp_path / "bundles" / "audit_queries.jsonl"
    finally:
        server.terminate()
        server.wait(10)


def test_the_served_api_answers_an_auditor_only_and_logs_both_requests(
    served: tuple[str, str, Path],
) -> None:
    url, secret, log = served

    refused = httpx.get(f"{url}/v1/audit/bundles/b1/replay", timeout=30)
    answered = httpx.get(
        f"{url}/v1/audit/bundles/b1/replay", params={"as_of": "2024-03-05"},
        headers={"Authorization": f"Bearer {secret}"}, timeout=60,
    )  # fmt: skip

    assert refused.status_code == 401
    assert answered.status_code == 200
    assert "INF-05" in [s["rule_id"] for s in answered.json()["signals"]]
    entries = read_query_log(log)
    assert [(e["who"], e["status"]) for e in entries][-2:] == [
        (None, 401),
        ("token:inspector-2", 200),
    ]
