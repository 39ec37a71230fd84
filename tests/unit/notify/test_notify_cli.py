"""`safetymon routes test`: who would be told about a signal, and when (no service needed)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from safetymon.cli import app
from schemas import Role, Urgency
from tests.unit.notify.factories import ROUTING_TOML, make_signal


def test_routes_test_shows_site_investigators_only_and_the_escalation(tmp_path: Path) -> None:
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING_TOML)
    signal = tmp_path / "signal.json"
    roles = (Role.INVESTIGATOR, Role.SAFETY_OFFICER)
    signal.write_text(make_signal(site_id="S02", recipients=roles).model_dump_json())

    result = CliRunner().invoke(
        app, ["routes", "test", str(signal), "--routing", str(routing)], env={"COLUMNS": "200"}
    )

    assert result.exit_code == 0, result.output
    assert "pi.s02@site2.example" in result.output
    assert "site1.example" not in result.output
    assert "after 60 min if unacknowledged (level 1)" in result.output
    assert "after 120 min if unacknowledged (level 2)" in result.output
    assert "dsmb.chair@trial.example" in result.output


def test_routes_test_puts_u2_in_the_daily_digest(tmp_path: Path) -> None:
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING_TOML)
    signal = tmp_path / "signal.json"
    signal.write_text(
        make_signal(urgency=Urgency.U2, recipients=(Role.SAFETY_OFFICER,)).model_dump_json()
    )

    result = CliRunner().invoke(
        app, ["routes", "test", str(signal), "--routing", str(routing)], env={"COLUMNS": "200"}
    )

    assert result.exit_code == 0, result.output
    assert "in the next daily digest" in result.output
    assert "unacknowledged" not in result.output


def test_routes_test_piped_prints_whole_rows_and_json(tmp_path: Path) -> None:
    """Outside a terminal (as under CliRunner) no cell is cut at 80; --json: one object a line."""
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING_TOML)
    signal = tmp_path / "signal.json"
    roles = (Role.INVESTIGATOR, Role.SAFETY_OFFICER)
    signal.write_text(make_signal(site_id="S02", recipients=roles).model_dump_json())
    args = ["routes", "test", str(signal), "--routing", str(routing)]

    table = CliRunner().invoke(app, args)  # no COLUMNS: rich would cut to 80
    lines = CliRunner().invoke(app, [*args, "--json"])

    assert table.exit_code == 0, table.output
    assert "after 120 min if unacknowledged (level 2)" in table.output
    assert "…" not in table.output
    rows = [json.loads(line) for line in lines.output.splitlines()]
    assert {row["address"] for row in rows} >= {"pi.s02@site2.example", "dsmb.chair@trial.example"}
    assert all(set(row) == {"when", "role", "address", "note"} for row in rows)
