"""The rules service's signals snapshot: its outbox as Parquet, in production order, bytes kept."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import duckdb
import pyarrow.parquet as pq
import pytest

from schemas import Role, SignalPayload, SignalRaised, SignalUpdated, Urgency
from services.rules.adapters._duckdb_sql import SCHEMA
from services.rules.adapters.audit_export import SIGNALS_FILE, copy_signals

AT = datetime(2024, 3, 1, 9, tzinfo=UTC)
RAISED = "safetymon.rules.signal_raised.v1"
UPDATED = "safetymon.rules.signal_updated.v1"


def _payload(rule_id: str, version: int) -> SignalPayload:
    return SignalPayload(
        rule_id=rule_id, rule_version=version, category="sae", title="Serious adverse event",
        urgency=Urgency.U0, recipients=(Role.SAFETY_OFFICER,), reason="SAE reported",
        evidence_event_ids=(uuid4(),),
    )  # fmt: skip


def _raised(cause: UUID, rule_id: str = "SAE-01") -> SignalRaised:
    return SignalRaised(
        event_id=uuid4(), trial_id="NCT01724398", site_id="S01", participant_id="P-1",
        occurred_at=AT, recorded_at=AT, source="rules", source_ref=f"{rule_id}:{cause}",
        actor="safetymon-rules", causation_id=cause, payload=_payload(rule_id, 2),
    )  # fmt: skip


def _retraction(of: SignalRaised, cause: UUID) -> SignalUpdated:
    return SignalUpdated(
        **{**of.model_dump(exclude={"event_type"}), "event_id": uuid4(), "causation_id": cause},
        signal_id=of.event_id, status="retracted",
    )  # fmt: skip


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path / "rules.duckdb"))
    connection.execute(SCHEMA)
    return connection


def _insert(
    con: duckdb.DuckDBPyConnection, seq: int, signal: SignalRaised | SignalUpdated, subject: str
) -> bytes:
    body = signal.model_dump_json().encode()  # what the store writes and the relay publishes
    con.execute(
        "INSERT INTO signal_outbox (signal_id, seq, subject, body) VALUES (?, ?, ?, ?)",
        [signal.event_id, seq, subject, body],
    )
    return body


def test_the_outbox_is_copied_in_production_order_with_the_published_bytes(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """Auditors get every signal raised live, in order, with the exact bytes published."""
    cause, correction = uuid4(), uuid4()
    raised = _raised(cause)
    retracted = _retraction(raised, correction)
    second = _insert(con, 2, retracted, UPDATED)  # inserted first, produced second
    first = _insert(con, 1, raised, RAISED)
    con.execute("UPDATE signal_outbox SET published_at = ? WHERE seq = 1", [AT])

    report = copy_signals(con, tmp_path)
    rows = pq.read_table(tmp_path / SIGNALS_FILE).to_pylist()

    assert report == {"path": str(tmp_path / SIGNALS_FILE), "rows": 2}
    assert [row["outbox_seq"] for row in rows] == [1, 2]
    assert [row["body"].encode() for row in rows] == [first, second]
    assert [(row["kind"], row["status"], row["updates_signal_id"]) for row in rows] == [
        ("raised", None, None),
        ("updated", "retracted", str(raised.event_id)),
    ]
    assert rows[0]["signal_id"] == str(raised.event_id)
    assert (rows[0]["rule_id"], rows[0]["rule_version"]) == ("SAE-01", 2)
    assert (rows[0]["trial_id"], rows[0]["site_id"], rows[0]["participant_id"]) == (
        "NCT01724398", "S01", "P-1",
    )  # fmt: skip
    assert [row["cause_event_id"] for row in rows] == [str(cause), str(correction)]
    assert [row["subject"] for row in rows] == [RAISED, UPDATED]
    assert rows[0]["published_at"] == AT
    assert rows[1]["published_at"] is None


def test_an_empty_outbox_gives_an_empty_file_with_the_columns(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """A trial with no signal yet still exports a signals file an auditor can open."""
    report = copy_signals(con, tmp_path)

    assert report["rows"] == 0
    assert "cause_event_id" in pq.read_schema(tmp_path / SIGNALS_FILE).names


def test_the_copy_runs_on_a_read_only_connection_as_the_offline_export_does(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """The offline export reads a stopped service's file without writing to it."""
    _insert(con, 1, _raised(uuid4()), RAISED)
    con.close()
    out = tmp_path / "out"
    out.mkdir()
    read_only = duckdb.connect(str(tmp_path / "rules.duckdb"), read_only=True)
    try:
        report = copy_signals(read_only, out)
    finally:
        read_only.close()

    assert report["rows"] == 1
