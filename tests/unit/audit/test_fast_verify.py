"""The fast path of verify proves a clean log only; any doubt goes to the row-by-row verifier."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.audit.adapters._fast import event_log_verified
from services.audit.adapters.bundle_reader import read_chain_rows
from services.audit.core.verify import Expected, verify_chain
from tests.unit.audit.logs import accepted_wires, write_log
from tools.demo.generator import HISTORIC_START, iter_feed

# The fast verifier must give the row-by-row verifier's report on whole logs.
pytestmark = pytest.mark.slow


@pytest.fixture
def log(tmp_path: Path) -> Path:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    feed = list(iter_feed(participants=2, weeks=1, start=HISTORIC_START))
    return write_log(
        tmp_path, accepted_wires((s, base + timedelta(minutes=i)) for i, s in enumerate(feed))
    )


def _expected(path: Path) -> Expected:
    report = verify_chain("event_log", read_chain_rows(path))
    return Expected(rows=report.count, last_seq=report.count, head=report.head)


def test_a_clean_log_gets_the_same_report_as_the_row_by_row_verifier(log: Path) -> None:
    slow = verify_chain("event_log", read_chain_rows(log), _expected(log))

    fast = event_log_verified(log, "event_log", _expected(log))

    assert slow.ok
    assert fast == slow


def test_an_edited_column_or_a_different_head_is_left_to_the_row_by_row_verifier(
    log: Path, tmp_path: Path
) -> None:
    expected = _expected(log)
    table = pq.read_table(log)
    participants = table.column("participant_id").to_pylist()
    participants[3] = "P-FORGED"
    index = table.schema.get_field_index("participant_id")
    edited = tmp_path / "edited" / "event_log.parquet"
    edited.parent.mkdir()
    pq.write_table(table.set_column(index, "participant_id", pa.array(participants)), edited)
    other_head = Expected(expected.rows, expected.last_seq, "f" * 64)

    assert event_log_verified(edited, "event_log", expected) is None
    assert event_log_verified(log, "event_log", other_head) is None
    report = verify_chain("event_log", read_chain_rows(edited), expected)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("edited", 4)
    assert "participant_id" in report.problem.detail
