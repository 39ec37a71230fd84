"""`safetymon up` with two rules workers over four partitions (real NATS, SMTP, processes).

One worker is killed with SIGKILL while SAEs arrive: the survivor takes its partitions over
(or the restarted worker resumes them), and notify, reading every partition's signals,
still sends each SAE's emails exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import nats
import pytest

from schemas import NOTIFY_DURABLE, Subjects
from schemas.subjects import rules_durable
from tests.conftest import ReceivedMail, SmtpServer
from tests.credentials import AUTH
from tests.e2e.test_supervisor import DEV_UP, _environment, _safetymon_up, _wait_http
from tests.factories import EXPECTED_PER_SITE, sae, unique

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

N, W = 4, 2


async def _post(port: int, count: int) -> list[str]:
    participants = [unique("PW") for _ in range(count)]
    async with httpx.AsyncClient(timeout=30) as http:
        for participant in participants:
            response = await http.post(
                f"http://127.0.0.1:{port}/v1/events",
                json=[sae(participant_id=participant, site_id="S01")],
                headers=AUTH,
            )
            assert response.json()["accepted"] == 1, response.text
    return participants


async def _drained(nats_url: str, namespace: str, timeout: float = 120.0) -> None:
    subjects = Subjects(namespace)
    checks = [(subjects.facts_stream, rules_durable(k, N)) for k in range(N)]
    checks.append((subjects.signals_stream, NOTIFY_DURABLE))
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            infos = [await js.consumer_info(stream, durable) for stream, durable in checks]
            if all(not i.num_pending and not i.num_ack_pending for i in infos):
                return
            await asyncio.sleep(0.2)
    finally:
        await nc.close()
    raise AssertionError("consumers did not drain")


async def _every_sae_alerted(
    smtp_server: SmtpServer, per_sae: int, *, count: int, timeout: float = 120.0
) -> list[ReceivedMail]:
    """The mails once `count` SAEs each have at least `per_sae` (their SAE-01 recipients)."""
    deadline = time.monotonic() + timeout
    while True:
        mails = smtp_server.recorder.snapshot()
        per_fact = Counter(m.message["X-Safetymon-Correlation-Id"] for m in mails)
        if sum(n >= per_sae for n in per_fact.values()) >= count or time.monotonic() > deadline:
            return mails
        await asyncio.sleep(0.2)


async def test_a_killed_worker_loses_and_repeats_no_email(
    tmp_path: Path, nats_url: str, namespace: str, smtp_server: SmtpServer
) -> None:
    env = _environment(tmp_path, smtp_server)
    env.update(
        SAFETYMON_NATS_URL=nats_url, SAFETYMON_NAMESPACE=namespace,
        SAFETYMON_PARTITIONS=str(N), SAFETYMON_RULES_WORKERS=str(W),
        SAFETYMON_CLOCK_TICK_SECONDS="0", SAFETYMON_RULES_ACK_WAIT="5",
    )  # fmt: skip
    per_sae = len(EXPECTED_PER_SITE["S01"])
    with _safetymon_up(tmp_path, env) as up:
        first = dict(up.wait_started(3 + W))
        _wait_http(up.http_port)
        before = await _post(up.http_port, 8)
        os.kill(first["rules-1"], signal.SIGKILL)
        after = await _post(up.http_port, 8)
        await smtp_server.recorder.wait_for(per_sae * 16, timeout=120)
        await _drained(nats_url, namespace)
        mails = await _every_sae_alerted(smtp_server, per_sae, count=16)
        up.process.send_signal(signal.SIGINT)
        up.process.wait(30)

    assert sorted(first) == ["console", "ingest", "notify", "rules-0", "rules-1"]
    assert any(name == "rules-1" and pid != first["rules-1"] for name, pid in up.started())
    sent = Counter((m.message["Message-ID"], r) for m in mails for r in m.rcpt_tos)
    per_fact = Counter(m.message["X-Safetymon-Correlation-Id"] for m in mails)
    subjects = sorted({str(m.message["Subject"]) for m in mails})
    assert len(before) + len(after) == 16
    assert len(per_fact) == 16, subjects  # every SAE was alerted on
    assert set(sent.values()) == {1}, subjects  # and no email went out twice


async def test_workers_on_the_embedded_server_use_their_own_user(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    """The dev `up` with its own NATS: each worker, as the rules user, binds its partitions."""
    env = _environment(tmp_path, smtp_server)  # no SAFETYMON_NATS_URL: the dev command embeds one
    env.update(
        SAFETYMON_PARTITIONS=str(N), SAFETYMON_RULES_WORKERS=str(W),
        SAFETYMON_CLOCK_TICK_SECONDS="0",
    )  # fmt: skip
    per_sae = len(EXPECTED_PER_SITE["S01"])
    with _safetymon_up(tmp_path, env, DEV_UP) as up:
        first = dict(up.wait_started(3 + W))
        _wait_http(up.http_port)
        await _post(up.http_port, 6)
        mails = await _every_sae_alerted(smtp_server, per_sae, count=6)
        up.process.send_signal(signal.SIGINT)
        code = up.process.wait(30)

    output = up.stdout.read_text(errors="replace") + up.stderr.read_text(errors="replace")
    sent = Counter((m.message["Message-ID"], r) for m in mails for r in m.rcpt_tos)
    assert sorted(first) == ["console", "ingest", "notify", "rules-0", "rules-1"]
    assert len({m.message["X-Safetymon-Correlation-Id"] for m in mails}) == 6
    assert set(sent.values()) == {1}
    assert "Authorization Violation" not in output
    assert "permissions violation" not in output
    assert code == 0
