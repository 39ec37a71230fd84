"""`safetymon report dsmb` against a running ingest service: its authenticated audit snapshot."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import httpx
import nats
import nats.js.errors
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from kit.auth import Role, TokenStore
from safetymon.cli import app
from schemas import Subjects
from services.ingest.config import Settings
from services.ingest.main import build_app
from services.ingest.service import IngestService
from tests.credentials import AUTH, TEST_TOKEN
from tests.unit.report.fixture_feed import fixture_feed

pytestmark = pytest.mark.integration


@pytest.fixture
async def ingest(tmp_path: Path, nats_url: str) -> AsyncIterator[tuple[IngestService, TokenStore]]:
    namespace = f"t{uuid4().hex[:12]}"
    tokens_file = tmp_path / "tokens.json"
    service = build_app(
        Settings(data_dir=tmp_path, nats_url=nats_url, namespace=namespace, http_port=0,
                 bootstrap_token=SecretStr(TEST_TOKEN), tokens_path=tokens_file)
    )  # fmt: skip
    await service.start()
    try:
        yield service, TokenStore(tokens_file)
    finally:
        await service.stop()
        nc = await nats.connect(nats_url)
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await nc.jetstream().delete_stream(Subjects(namespace).facts_stream)
        await nc.close()


def _report(url: str, token: str, out: Path) -> Result:
    as_of = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    return CliRunner().invoke(
        app, ["report", "dsmb", "--ingest-url", url, "--as-of", as_of, "--out", str(out)],
        env={"SAFETYMON_TOKEN": token},
    )  # fmt: skip


async def test_report_from_the_live_snapshot_with_an_auditor_token(
    ingest: tuple[IngestService, TokenStore], tmp_path: Path
) -> None:
    service, tokens = ingest
    url = f"http://127.0.0.1:{service.http_port}"
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=30) as client:
        # One request per item: a correction needs its target already in the log.
        replies = [await client.post("/v1/events", json=item) for item, _ in fixture_feed()]
        head = (await client.get("/v1/log/head")).json()
    assert {r.status_code for r in replies} == {200}
    auditor = tokens.create("report-auditor", Role.auditor)[1]
    dsmb = tokens.create("report-dsmb", Role.dsmb)[1]

    # The CLI is synchronous; run it off the loop that serves ingest's HTTP API.
    allowed = await asyncio.to_thread(_report, url, auditor, tmp_path / "ok")
    refused = await asyncio.to_thread(_report, url, dsmb, tmp_path / "refused")

    assert allowed.exit_code == 0, allowed.output
    # CliRunner captures the whole process's stdout, ingest's log lines included.
    start, end = allowed.stdout.index("{\n"), allowed.stdout.rindex("\n}") + 2
    summary = json.loads(allowed.stdout[start:end])
    assert summary["log_position"] == head["seq"] == 49
    assert summary["chain_head"] == head["hash"]
    assert summary["stops_triggered"] == ["STOP-03/B"]
    assert (tmp_path / "ok" / "dsmb_report.html").is_file()
    assert refused.exit_code == 1
    assert "403" in refused.output
