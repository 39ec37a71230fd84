"""Replay against the live signals: same ids and bytes, or every difference named (exit 1)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from kit.files import file_sha256
from safetymon.cli import app
from schemas import GENESIS_HASH
from services.audit.core.manifest import MANIFEST_FILE, SIGNALS
from services.rules.adapters._duckdb_sql import chain_signals
from tests.factories import enrolment, lab, sae, unique
from tests.unit.audit.bundles import write_bundle
from tests.unit.audit.logs import accepted_wires

# Each test replays a whole bundle and compares it with the live signals byte for byte.
pytestmark = pytest.mark.slow

DAY1 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def _bundle(tmp_path: Path) -> Path:
    """An infection recorded on day 5 (INF-05), an SAE recorded on day 6 (SAE-01, VB-01)."""
    pid = unique("P")
    items = [
        (enrolment(participant_id=pid, occurred_at="2024-03-01T08:00:00Z"), DAY1),
        (lab(participant_id=pid, occurred_at="2024-03-02T08:00:00Z"), DAY1 + timedelta(days=1)),
        (
            lab(loinc="600-7", value=1, unit="1", participant_id=pid,
                occurred_at="2024-03-02T08:00:00Z"),
            DAY1 + timedelta(days=4),
        ),
        (sae(participant_id=pid, site_id="S01"), DAY1 + timedelta(days=5)),
    ]  # fmt: skip
    return write_bundle(tmp_path / "bundle", accepted_wires(items))


def _replay(bundle: Path, *args: str) -> tuple[Result, dict[str, Any]]:
    result = CliRunner().invoke(app, ["audit", "replay", str(bundle), *args, "--json"])
    return result, json.loads(result.stdout) if result.stdout.startswith("{") else {}


def _plant(bundle: Path, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    """Rewrite signals.parquet through `change(rows)` and fix its digest, as a forger would."""
    path = bundle / SIGNALS
    table = pq.read_table(path)
    rows = change(table.to_pylist())
    # A forger re-chains the signals too (verify would catch the edit): the replay is what
    # still tells a re-chained forgery from what the rules raised.
    links = chain_signals(GENESIS_HASH, 1, [row["body"].encode() for row in rows])
    for seq, (row, (prev, digest)) in enumerate(zip(rows, links, strict=True), start=1):
        row.update(outbox_seq=seq, prev_hash=prev, hash=digest)
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    manifest["files"][SIGNALS]["sha256"] = file_sha256(path)
    manifest["files"][SIGNALS]["rows"] = pq.read_metadata(path).num_rows
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_the_live_signals_of_the_same_log_are_identical_to_the_replay(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)

    result, document = _replay(bundle)
    human = CliRunner().invoke(app, ["audit", "replay", str(bundle)], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    live = document["live_signals"]
    assert (live["ok"], live["identical"], live["replayed"]) == (True, 3, 3)
    assert live["differences"] == []
    assert human.exit_code == 0
    assert "identical: 3 signals, same ids and bytes (canonical JSON)" in human.stdout


def test_a_live_signal_with_other_bytes_is_named_with_the_fields_that_differ(
    tmp_path: Path,
) -> None:
    bundle = _bundle(tmp_path)

    def retitle(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = json.loads(rows[0]["body"])
        body["payload"]["title"] = "Something milder"
        rows[0]["body"] = json.dumps(body, separators=(",", ":"))
        return rows

    _plant(bundle, retitle)
    result, document = _replay(bundle)
    human = CliRunner().invoke(app, ["audit", "replay", str(bundle)], env={"COLUMNS": "250"})

    assert result.exit_code == 1
    (difference,) = document["live_signals"]["differences"]
    assert difference["kind"] == "different_bytes"
    assert difference["rule_id"] == "INF-05"
    assert difference["detail"] == "same id, different bytes: payload.title differ"
    assert document["live_signals"]["identical"] == 2
    assert human.exit_code == 1
    assert "DIFFERENT" in human.stdout


def test_a_signal_missing_from_the_live_run_and_one_only_live_are_both_reported(
    tmp_path: Path,
) -> None:
    bundle = _bundle(tmp_path)
    forged = str(uuid4())

    def drop_first_and_forge(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        extra = {**rows[-1], "outbox_seq": 99, "signal_id": forged, "cause_event_id": str(uuid4())}
        return [*rows[1:], extra]

    _plant(bundle, drop_first_and_forge)
    result, document = _replay(bundle)

    assert result.exit_code == 1
    kinds = {(d["kind"], d["rule_id"]) for d in document["live_signals"]["differences"]}
    assert kinds == {("only_replay", "INF-05"), ("only_live", "VB-01")}
    only_live = next(d for d in document["live_signals"]["differences"] if d["kind"] == "only_live")
    assert only_live["signal_id"] == forged
    assert only_live["detail"].endswith("is not on the log")


def test_as_of_compares_only_the_live_signals_whose_cause_was_replayed(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)

    result, document = _replay(bundle, "--as-of", "2024-03-05")

    assert result.exit_code == 0, result.output
    live = document["live_signals"]
    assert (live["identical"], live["live_in_range"], live["live_beyond_range"]) == (1, 1, 2)


def test_a_bundle_without_live_signals_is_replayed_without_a_comparison(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    (bundle / SIGNALS).unlink()
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    del manifest["files"][SIGNALS]
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest))

    result, document = _replay(bundle)

    assert result.exit_code == 0, result.output
    assert document["live_signals"] is None
    assert len(document["signals"]) == 3
