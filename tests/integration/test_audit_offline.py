"""Offline export reads the stopped services' DuckDB files, and never a running service's."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from safetymon.cli import app
from services.audit.adapters.export_offline import INGEST_FILE, export_offline
from services.audit.core.errors import ExportError

pytestmark = pytest.mark.integration

_HOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def held(tmp_path: Path) -> Iterator[Path]:
    """A data directory whose ingest.duckdb another process holds open, as a service does."""
    data = tmp_path / "data"
    data.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(data / INGEST_FILE)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        yield data
    finally:
        holder.communicate("stop\n", timeout=10)


def test_a_file_in_use_by_a_running_service_is_named_and_nothing_is_written(
    held: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bundle"

    with pytest.raises(ExportError) as caught:
        export_offline(held, out)

    assert str(caught.value) == (
        "ingest.duckdb is in use by a running service: "
        "use `safetymon audit export` without --offline"
    )
    assert not out.exists()


def test_the_cli_reports_a_file_in_use_and_exits_1(held: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["audit", "export", "--offline", "--data-dir", str(held), "--out", str(tmp_path / "b")],
    )

    assert result.exit_code == 1
    assert "ingest.duckdb is in use by a running service" in result.output


def test_a_data_directory_without_the_services_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="does not exist"):
        export_offline(tmp_path, tmp_path / "bundle")
