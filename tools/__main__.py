"""`python -m tools`: the developer commands (tools/cli.py)."""

from tools.cli import app

app(prog_name="python -m tools")
