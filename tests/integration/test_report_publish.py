"""Scheduled DSMB reports are announced on JetStream as `ReportIssued`, once each."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import nats.js.errors
import pytest

from schemas import ReportIssued, Subjects
from services.report.config import Settings
from services.report.main import build_app
from services.report.service import STATE_FILE
from tests.unit.report.fixture_feed import build_fixture_log

pytestmark = pytest.mark.integration


@pytest.fixture
async def reports_stream(nats_url: str, namespace: str) -> AsyncIterator[str]:
    subjects = Subjects(namespace)
    yield subjects.reports_stream
    nc = await nats.connect(nats_url)
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await nc.jetstream().delete_stream(subjects.reports_stream)
    await nc.close()


@pytest.fixture
def event_log(tmp_path: Path) -> Path:
    # Built outside the test's event loop: the builder runs its own.
    return build_fixture_log(tmp_path / "log")


async def _published(nats_url: str, stream: str, subject: str) -> list[ReportIssued]:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    info = await js.stream_info(stream)
    facts = []
    for seq in range(1, info.state.messages + 1):
        message = await js.get_msg(stream, seq)
        assert message.subject == subject
        assert message.headers is not None
        fact = ReportIssued.model_validate_json(message.data or b"")
        assert message.headers["Nats-Msg-Id"] == str(fact.event_id)
        facts.append(fact)
    await nc.close()
    return facts


async def test_tick_issues_periodic_and_ad_hoc_reports_and_announces_each_once(
    tmp_path: Path, event_log: Path, nats_url: str, namespace: str, reports_stream: str
) -> None:
    log = event_log
    service = build_app(Settings(nats_url=nats_url, namespace=namespace))
    root = tmp_path / "reports"

    first = await service.schedule_tick(log, root=root, publish=True)
    second = await service.schedule_tick(log, root=root, publish=True)
    await service.announce(first[0])  # a repeat of the same report is dropped by JetStream

    assert [i.fact.payload.report_kind for i in first] == ["dsmb_periodic", "dsmb_ad_hoc"]
    assert second == []
    assert (root / STATE_FILE).is_file()
    published = await _published(nats_url, reports_stream, Subjects(namespace).report_subject())
    assert [f.event_id for f in published] == [i.fact.event_id for i in first]
    ad_hoc = published[1].payload
    assert ad_hoc.numbers["STOP-03.B.triggered"] == 1.0
    assert ad_hoc.numbers["stops_triggered"] == 1.0
    assert ad_hoc.log_position == 49  # as of now: the whole log
    for issued in first:
        directory = root / str(issued.fact.event_id)
        assert issued.directory == directory
        assert (directory / "dsmb_report.html").is_file()
        assert set(issued.fact.payload.files_sha256) == {p.name for p in directory.iterdir()} - {
            "report.json"
        }
