"""Where command output goes: a terminal gets rich tables; a pipe gets them whole.

Rich sizes a console that is not a terminal to 80 columns, so a piped `safetymon ... | grep`
saw `notifica…` and wrapped rows. Piped, the console is as wide as any row needs (tables
do not expand to the console width, so nothing is padded) and plain (no colour codes).
Tables rather than TSV: the same printers serve both, a person reading `| less` keeps the
headers and titles, and every listing command has `--json` for programs.
"""

from __future__ import annotations

from typing import Final, TextIO

from rich.console import Console

#: Wide enough that no real cell (ids, addresses, paths, reasons) is cut or wrapped.
PIPED_WIDTH: Final = 10_000


def output_console(file: TextIO | None = None) -> Console:
    """Console for a command's output on stdout (or `file`); create it when printing.

    Rich resolves stdout when it prints, so a console made inside the command follows a
    redirected stdout (and typer's CliRunner).
    """
    console = Console(file=file)
    if console.is_terminal:
        return console
    return Console(file=file, width=PIPED_WIDTH, soft_wrap=True, no_color=True, highlight=False)
