"""Replay as of a recorded time: what the system knew and decided then, from a bundle only."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from kit.files import file_sha256
from safetymon.cli import app
from schemas import canonical_bytes
from services.audit.adapters.log_reader import iter_facts, participant_partition
from services.audit.adapters.replayer import replay_log
from services.audit.adapters.settings_files import load_config
from services.audit.core.manifest import EVENT_LOG
from services.audit.core.moments import parse_moment
from services.rules.core import fold
from tests.factories import enrolment, lab, unique
from tests.unit.audit.bundles import write_bundle
from tests.unit.audit.logs import accepted_wires, write_log
from tools.demo.generator import HISTORIC_START, iter_feed

DAY1 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def _late_culture_bundle(tmp_path: Path) -> tuple[Path, str]:
    """Enrolled on day 1; a blood culture sampled on day 2 is recorded only on day 5."""
    pid = unique("P")
    items = [
        (enrolment(participant_id=pid, occurred_at="2024-03-01T08:00:00Z"), DAY1),
        (lab(participant_id=pid, occurred_at="2024-03-02T08:00:00Z"), DAY1 + timedelta(days=1)),
        (
            lab(loinc="600-7", value=1, unit="1", participant_id=pid,
                occurred_at="2024-03-02T08:00:00Z"),
            DAY1 + timedelta(days=4),
        ),
    ]  # fmt: skip
    return write_bundle(tmp_path / "bundle", accepted_wires(items)), pid


def _replay(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, ["audit", "replay", *args, "--json"])
    return result.exit_code, json.loads(result.stdout) if result.exit_code == 0 else {
        "output": result.output
    }


@pytest.mark.slow
def test_a_culture_recorded_late_is_absent_the_day_before_it_was_recorded_and_present_after(
    tmp_path: Path,
) -> None:
    bundle, pid = _late_culture_bundle(tmp_path)
    digests = {p.name: file_sha256(p) for p in bundle.iterdir()}

    before_code, before = _replay(str(bundle), "--as-of", "2024-03-04")
    after_code, after = _replay(str(bundle), "--as-of", "2024-03-05")

    assert (before_code, after_code) == (0, 0), (before, after)
    assert [s["rule_id"] for s in before["signals"] if s["rule_id"].startswith("INF")] == []
    assert before["facts"] == 2
    assert [p["participant_id"] for p in before["participants"]] == [pid]
    infection = [s for s in after["signals"] if s["rule_id"] == "INF-05"]
    assert len(infection) == 1
    assert infection[0]["participant_id"] == pid
    assert infection[0]["recorded_at"] == "2024-03-05T09:00:00+00:00"
    assert infection[0]["occurred_at"] == "2024-03-02T08:00:00+00:00"
    assert after["facts"] == 3
    assert {p.name: file_sha256(p) for p in bundle.iterdir()} == digests  # nothing written


@pytest.mark.slow
def test_the_table_names_each_signal_with_its_rule_version(tmp_path: Path) -> None:
    bundle, pid = _late_culture_bundle(tmp_path)

    result = CliRunner().invoke(app, ["audit", "replay", str(bundle)], env={"COLUMNS": "250"})

    assert result.exit_code == 0, result.output
    assert "INF-05 v1" in result.stdout
    assert pid in result.stdout
    assert "nothing was sent and nothing was written" in result.stdout


@pytest.mark.slow
def test_replay_in_two_processes_gives_the_signals_of_one_fold_byte_for_byte(
    tmp_path: Path,
) -> None:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    feed = list(iter_feed(participants=6, weeks=3, start=HISTORIC_START))
    items = [(s, base + timedelta(minutes=i)) for i, s in enumerate(feed)]
    log = write_log(tmp_path, accepted_wires(items))
    config = load_config()

    one = replay_log(log, as_of=None, config=config, workers=1)
    two = replay_log(log, as_of=None, config=config, workers=2)
    _, folded = fold.replay([logged.fact for logged in iter_facts(log)], config)

    assert len(one.signals) >= 5
    assert {participant_partition(p.participant_id, 2) for p in one.participants} == {0, 1}
    assert [s.canonical for s in two.signals] == [s.canonical for s in one.signals]
    assert [s.canonical for s in one.signals] == [
        canonical_bytes(signal.model_dump(mode="json")) for signal in folded
    ]
    assert one.participants == two.participants
    assert (one.facts, one.last_seq) == (len(feed), len(feed))


@pytest.mark.slow
def test_a_bundle_whose_log_was_edited_is_not_replayed(tmp_path: Path) -> None:
    bundle, _ = _late_culture_bundle(tmp_path)
    table = pq.read_table(bundle / EVENT_LOG)
    contents = table.column("content").to_pylist()
    contents[1] = contents[1].replace('"value":5.0', '"value":50.0')
    index = table.schema.get_field_index("content")
    pq.write_table(table.set_column(index, "content", pa.array(contents)), bundle / EVENT_LOG)

    result = CliRunner().invoke(app, ["audit", "replay", str(bundle)])

    assert result.exit_code == 1
    assert "does not verify" in result.output


def test_a_bare_date_means_the_end_of_that_day_and_no_offset_means_utc() -> None:
    assert parse_moment("2024-03-04") == datetime.combine(
        datetime(2024, 3, 4).date(), time.max, tzinfo=UTC
    )
    assert parse_moment("2024-03-04T10:00") == datetime(2024, 3, 4, 10, tzinfo=UTC)
    assert parse_moment("2024-03-04T10:00+08:00") == datetime(2024, 3, 4, 2, tzinfo=UTC)


def test_an_unreadable_as_of_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["audit", "replay", str(tmp_path), "--as-of", "yesterday"])

    assert result.exit_code == 2
    assert "--as-of" in result.output


@pytest.mark.slow
def test_a_chained_entry_the_schemas_cannot_read_stops_the_replay_with_its_seq(
    tmp_path: Path,
) -> None:
    bundle, _ = _late_culture_bundle(tmp_path)
    wires = [json.loads(c) for c in pq.read_table(bundle / EVENT_LOG)["content"].to_pylist()]
    del wires[1]["payload"]["loinc"]  # chained as it is: only the schema can object
    broken = write_bundle(tmp_path / "broken", wires)

    result = CliRunner().invoke(app, ["audit", "replay", str(broken)])

    assert result.exit_code == 1
    assert "log entry seq 2 does not decode" in result.output
