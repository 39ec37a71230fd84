"""`safetymon ingest FILE` against a running ingest service: summary, reasons, idempotence."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog.testing
from pydantic import SecretStr
from typer.testing import CliRunner

from safetymon.cli import app
from services.ingest.config import Settings
from services.ingest.main import build_app
from services.ingest.service import IngestService
from tests.credentials import TEST_TOKEN
from tests.factories import enrolment, lab

pytestmark = pytest.mark.integration


@pytest.fixture
async def ingest(
    tmp_path: Path, nats_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[IngestService]:
    settings = Settings(
        data_dir=tmp_path / "svc",
        nats_url=nats_url,
        namespace=namespace,
        http_port=0,
        bootstrap_token=SecretStr(TEST_TOKEN),
    )
    monkeypatch.setenv("SAFETYMON_TOKEN", TEST_TOKEN)  # what `safetymon ingest` sends
    service = build_app(settings)
    await service.start()
    yield service
    await service.stop()


async def test_ingest_command_reports_accepted_duplicates_and_rejected_lines(
    ingest: IngestService, tmp_path: Path
) -> None:
    """A JSON Lines file goes in; a second run adds nothing; bad lines are named with reasons."""
    feed = tmp_path / "feed.jsonl"
    good = [enrolment(participant_id="P-201"), lab(participant_id="P-201")]
    lines = [json.dumps(item) for item in good] + ["{not json", json.dumps(lab(unit="furlongs"))]
    feed.write_text("\n".join(lines) + "\n")
    url = f"http://127.0.0.1:{ingest.http_port}"
    runner = CliRunner()

    # The command is synchronous: run it off the event loop that serves the HTTP API, with
    # the service's own log lines captured so they do not mix into the command's stdout.
    with structlog.testing.capture_logs():
        first = await asyncio.to_thread(
            runner.invoke, app, ["ingest", str(feed), "--url", url, "--batch", "2"]
        )
        second = await asyncio.to_thread(runner.invoke, app, ["ingest", str(feed), "--url", url])

    assert first.exit_code == 1  # some lines were rejected
    summary = json.loads(first.stdout)
    assert {k: summary[k] for k in ("read", "accepted", "duplicate", "rejected")} == {
        "read": 4,
        "accepted": 2,
        "duplicate": 0,
        "rejected": 2,
    }
    assert [e["line"] for e in summary["errors"]] == [3, 4]
    assert "not valid JSON" in summary["errors"][0]["errors"][0]["reason"]
    assert summary["errors"][1]["errors"][0]["field"] == "payload.result.unit"
    again = json.loads(second.stdout)
    assert (again["accepted"], again["duplicate"]) == (0, 2)


def test_ingest_command_says_when_no_service_answers(tmp_path: Path) -> None:
    """A clear message, not a traceback, when nothing listens at the URL."""
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps(enrolment()) + "\n")

    result = CliRunner().invoke(app, ["ingest", str(feed), "--url", "http://127.0.0.1:9"])

    assert result.exit_code != 0
    assert "no ingest service at http://127.0.0.1:9" in str(result.exception)
