"""`safetymon report dsmb` from an audit bundle is reproducible from its log position.

Two builds with the same --as-of give byte-identical CSV, Parquet and report.json files and
an HTML page that differs only in its generation time; a later --as-of changes them.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from kit.files import file_sha256
from safetymon.cli import app
from services.audit.adapters.bundle_reader import write_manifest
from services.audit.core.manifest import EVENT_LOG, ChainSummary, FileEntry, Manifest
from services.report.adapters.duckdb_source import DuckDBLogSource
from services.report.adapters.writer import FileReportWriter
from services.report.app import issue_dsmb_report as app_issue
from services.report.main import build_app
from tests.unit.report.fixture_feed import AS_OF, build_fixture_log

pytestmark = pytest.mark.integration
GENERATED = re.compile(r'<dd class="generated">[^<]*</dd>')


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle directory holding the fixture log and a manifest that describes it."""
    log = build_fixture_log(tmp_path_factory.mktemp("log"))
    directory = tmp_path_factory.mktemp("bundle")
    target = directory / EVENT_LOG
    target.write_bytes(log.read_bytes())
    rows = pq.read_metadata(target).num_rows
    entry = FileEntry(
        rows=rows,
        sha256=file_sha256(target),
        chain=ChainSummary(first_seq=1, last_seq=rows, head="0" * 64, hashed="content"),
    )
    write_manifest(directory, Manifest(created_at=datetime.now(UTC), files={EVENT_LOG: entry}))
    return directory


def _build(bundle: Path, out: Path, as_of: datetime) -> dict[str, object]:
    result = CliRunner().invoke(
        app, ["report", "dsmb", "--bundle", str(bundle), "--as-of", as_of.isoformat(),
              "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_same_as_of_gives_identical_files_but_for_the_html_time(
    bundle: Path, tmp_path: Path
) -> None:
    first = _build(bundle, tmp_path / "first", AS_OF)
    second = _build(bundle, tmp_path / "second", AS_OF)

    one, two = _files(tmp_path / "first"), _files(tmp_path / "second")
    assert {**first, "out": ""} == {**second, "out": ""}
    assert sorted(one) == sorted(two)
    assert len([n for n in one if n.endswith((".csv", ".parquet"))]) == 22
    for name in one:
        if name != "dsmb_report.html":
            assert one[name] == two[name], name
    html_one, html_two = one["dsmb_report.html"].decode(), two["dsmb_report.html"].decode()
    assert GENERATED.sub("", html_one) == GENERATED.sub("", html_two)


def test_generation_time_is_the_only_difference_in_the_html(bundle: Path, tmp_path: Path) -> None:
    service = build_app()
    log = bundle / EVENT_LOG

    def issue(out: Path, now: datetime) -> dict[str, bytes]:
        app_issue(
            source=DuckDBLogSource(log), writer=FileReportWriter(), config=service.config,
            as_of=AS_OF, out=out, now=now,
        )  # fmt: skip
        return _files(out)

    one = issue(tmp_path / "one", datetime(2024, 4, 16, 9, 0, tzinfo=UTC))
    two = issue(tmp_path / "two", datetime(2024, 5, 1, 17, 30, tzinfo=UTC))

    html_one, html_two = one.pop("dsmb_report.html").decode(), two.pop("dsmb_report.html").decode()
    assert one == two
    assert '<dd class="generated">2024-04-16T09:00:00Z</dd>' in html_one
    assert '<dd class="generated">2024-05-01T17:30:00Z</dd>' in html_two
    diff = [(a, b) for a, b in zip(html_one.splitlines(), html_two.splitlines(), strict=True)
            if a != b]  # fmt: skip
    assert len(diff) == 1
    assert GENERATED.search(diff[0][0])


def test_report_states_its_position_and_chain_head(bundle: Path, tmp_path: Path) -> None:
    summary = _build(bundle, tmp_path / "out", AS_OF)

    manifest = json.loads((tmp_path / "out" / "report.json").read_text())
    html = (tmp_path / "out" / "dsmb_report.html").read_text()
    log = pq.read_table(bundle / EVENT_LOG, columns=["seq", "hash"]).to_pylist()
    head = next(row["hash"] for row in log if row["seq"] == 48)
    assert summary["log_position"] == manifest["log_position"] == 48
    assert summary["chain_head"] == manifest["chain_head"] == head
    assert f"seq {48}" in html
    assert head in html
    assert manifest["files"]["stopping_rules.csv"] == file_sha256(
        tmp_path / "out" / "stopping_rules.csv"
    )
    metadata = pq.read_schema(tmp_path / "out" / "ae_summary.parquet").metadata
    assert metadata[b"chain_head"] == head.encode()
    assert metadata[b"log_position"] == b"48"


def test_a_later_as_of_changes_the_tables(bundle: Path, tmp_path: Path) -> None:
    _build(bundle, tmp_path / "then", AS_OF)
    _build(bundle, tmp_path / "later", AS_OF.replace(day=17))

    then, later = _files(tmp_path / "then"), _files(tmp_path / "later")
    assert then["ae_by_term.csv"] != later["ae_by_term.csv"]
    assert b"Pruritus" in later["ae_by_term.csv"]


def test_a_bundle_whose_log_does_not_match_its_manifest_is_refused(
    bundle: Path, tmp_path: Path
) -> None:
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "manifest.json").write_bytes((bundle / "manifest.json").read_bytes())
    (damaged / EVENT_LOG).write_bytes((bundle / EVENT_LOG).read_bytes() + b"x")

    result = CliRunner().invoke(
        app, ["report", "dsmb", "--bundle", str(damaged), "--as-of", AS_OF.isoformat(),
              "--out", str(tmp_path / "out")],
    )  # fmt: skip

    assert result.exit_code == 2
    assert "does not match its manifest" in result.output


def test_the_parsed_projection_changes_nothing(bundle: Path, tmp_path: Path) -> None:
    """A report read through the cached projection is the report read from the log."""
    service = build_app()
    log = bundle / EVENT_LOG

    direct = service.issue_from_log(log, as_of=AS_OF, out=tmp_path / "direct")
    first = service.issue_from_log(
        log, as_of=AS_OF, out=tmp_path / "first", projection=tmp_path / "p"
    )
    cached = service.issue_from_log(
        log, as_of=AS_OF, out=tmp_path / "cached", projection=tmp_path / "p"
    )
    earlier = service.issue_from_log(log, as_of=AS_OF.replace(month=3, day=10), out=tmp_path / "e1",
                                     projection=tmp_path / "p")  # fmt: skip
    earlier_direct = service.issue_from_log(
        log, as_of=AS_OF.replace(month=3, day=10), out=tmp_path / "e2"
    )

    assert [p.name for p in (tmp_path / "p").iterdir()] == [
        "parsed-49-" + _head(log)[:16] + ".parquet"
    ]

    def tables(files: dict[str, str]) -> dict[str, str]:
        # The HTML carries its generation time; every other file must be identical.
        return {name: digest for name, digest in files.items() if name != "dsmb_report.html"}

    assert tables(direct.files) == tables(first.files) == tables(cached.files)
    assert tables(earlier.files) == tables(earlier_direct.files)
    assert len(tables(direct.files)) == 22
    assert earlier.report.position.seq < direct.report.position.seq


def _head(log: Path) -> str:
    rows = pq.read_table(log, columns=["seq", "hash"]).to_pylist()
    return str(max(rows, key=lambda r: r["seq"])["hash"])


def test_schedule_command_issues_what_is_due_once(bundle: Path, tmp_path: Path) -> None:
    """`report schedule` once: this month's report and an ad hoc one (STOP-03/B); then none."""
    command = ["report", "schedule", "--bundle", str(bundle), "--out", str(tmp_path),
               "--no-publish"]  # fmt: skip

    first = CliRunner().invoke(app, command)
    again = CliRunner().invoke(app, command)
    too_rare = CliRunner().invoke(app, [*command, "--every", "48"])

    assert first.exit_code == 0, first.output
    issued = [json.loads(line) for line in first.stdout.splitlines()]
    assert [i["kind"] for i in issued] == ["dsmb_periodic", "dsmb_ad_hoc"]
    assert all((tmp_path / i["report_id"] / "dsmb_report.html").is_file() for i in issued)
    assert again.exit_code == 0
    assert again.stdout == ""
    assert too_rare.exit_code == 2
    assert "ad hoc promise" in too_rare.output
