"""Reconcile through the real stack: every required email is in notify's trail, and a gap shows.

Real NATS, real SMTP server, real DuckDB files; reconcile reads a live snapshot, never a file.
The planted fault is the realistic one: the routing in force names a recipient the running
notify was never told about, so the notification it required was never sent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from safetymon.runner import Stack
from tests.conftest import SmtpServer
from tests.factories import EXPECTED_PER_SITE, ROUTING, enrolment, sae, unique
from tests.integration.audit_helpers import audit_live, post

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _free_notify_port(monkeypatch: pytest.MonkeyPatch) -> None:
    # notify's HTTP endpoint defaults to port 8081; parallel test runs on this machine share it.
    monkeypatch.setenv("SAFETYMON_NOTIFY_HTTP_PORT", "0")


async def test_reconcile_finds_every_email_sent_then_a_planted_missing_one(
    stack: Stack, smtp_server: SmtpServer, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    pid = unique("REC")
    await post(stack, [enrolment(participant_id=pid, site_id="S01"),
                       sae(participant_id=pid, site_id="S01")])  # fmt: skip
    await smtp_server.recorder.wait_for(len(EXPECTED_PER_SITE["S01"]))
    await stack.settled(60)
    in_force = tmp_path / "in_force.toml"
    in_force.write_text(ROUTING)
    widened = tmp_path / "widened.toml"
    widened.write_text(ROUTING.replace('"oncall@s01.example"]', '"oncall@s01.example", '
                                       '"deputy@s01.example"]'))  # fmt: skip

    code, clean, err = await audit_live(
        stack, nats_url, namespace, "reconcile", "--routing", str(in_force)
    )
    gap_code, gaps, _ = await audit_live(
        stack, nats_url, namespace, "reconcile", "--routing", str(widened)
    )

    assert code == 0, (err, clean.get("gaps"))
    sae01 = [s for s in clean["signals"] if s["rule_id"] == "SAE-01"]
    assert len(sae01) == 1
    assert sae01[0]["sent"] == sae01[0]["required"] == len(EXPECTED_PER_SITE["S01"])
    assert gap_code == 1
    missing = [(g["kind"], g["address"]) for g in gaps["gaps"]]
    assert ("missing", "deputy@s01.example") in missing
    assert {kind for kind, _ in missing} == {"missing"}
    assert all(address == "deputy@s01.example" for _, address in missing)
