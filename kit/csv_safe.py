"""CSV cells a spreadsheet cannot run as formulas (OWASP "CSV Injection").

Excel, LibreOffice and Google Sheets treat a cell that starts with `=`, `+`, `-`, `@`, a tab
or a carriage return as a formula, so an AE term like `=HYPERLINK(...)` in a DSMB CSV would
run on a reviewer's machine. OWASP's remedy: prefix such a text cell with a single quote,
which spreadsheets show as text. Every CSV safetymon writes passes its text cells here.

Only text is touched: a cell that is a plain number (`-3.2`, `+4`, `-1e-3`) is left alone,
because a spreadsheet reads it as that number, not a formula, and prefixing it would turn a
number column into text. Callers pass text cells only; typed numbers never come here.
"""

from __future__ import annotations

import re
from typing import Final

_TRIGGERS: Final = ("=", "+", "-", "@", "\t", "\r")
_NUMBER: Final = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def csv_text(value: str) -> str:
    """`value` as a CSV cell that no spreadsheet evaluates."""
    if value.startswith(_TRIGGERS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value
