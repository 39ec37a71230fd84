"""Listing commands print whole cells when stdout is a pipe, and `--json` parses."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.table import Table
from typer.testing import CliRunner

from safetymon._console import PIPED_WIDTH, output_console
from safetymon.tokens_cli import tokens_app

# The longest name a token may have: beside its id and role, an 80-column table cut it.
LONG_NAME = ("site-01-electronic-data-capture-laboratory-results-feed-" + "x" * 64)[:64]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _create_token(tokens: Path, role: str = "safety_officer") -> None:
    args = ["create", LONG_NAME, "--role", role, "--tokens-file", str(tokens)]
    result = CliRunner().invoke(tokens_app, args)
    assert result.exit_code == 0, result.output


def test_a_piped_table_keeps_every_cell_whole() -> None:
    table = Table("id", "reason")
    reason = "reason " * 60
    table.add_row("x", reason.strip())
    out = io.StringIO()

    output_console(out).print(table)

    assert reason.strip() in out.getvalue()
    assert "…" not in out.getvalue()
    assert "\x1b[" not in out.getvalue()  # no colour codes in a pipe


def test_a_terminal_keeps_rich_sizing() -> None:
    console = output_console(_Terminal())

    assert console.is_terminal
    assert console.width != PIPED_WIDTH


def test_tokens_list_through_cli_runner_prints_the_whole_name(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    _create_token(tokens)

    result = CliRunner().invoke(tokens_app, ["list", "--tokens-file", str(tokens)])

    assert result.exit_code == 0, result.output
    assert LONG_NAME in result.stdout
    assert "safety_officer" in result.stdout


@pytest.mark.slow
def test_tokens_list_into_a_real_pipe_prints_the_whole_name(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    _create_token(tokens)
    env = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "FORCE_COLOR"}}

    done = subprocess.run(
        [sys.executable, "-m", "safetymon.cli", "tokens", "list", "--tokens-file", str(tokens)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=env,
    )

    assert done.returncode == 0, done.stderr
    assert LONG_NAME in done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) > 80


def test_tokens_list_json_parses(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    _create_token(tokens)

    result = CliRunner().invoke(tokens_app, ["list", "--json", "--tokens-file", str(tokens)])

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["name"], r["role"]) for r in rows] == [(LONG_NAME, "safety_officer")]
