"""The token file's JSON document: versioned, read whole, replaced atomically (adapter kit).

Private to kit/auth.py, which turns these rows into principals.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

FILE_VERSION = 1


class TokenFileError(Exception):
    """The file is not a token file this version reads."""


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The token rows of the file at `path`.

    Raises:
        TokenFileError: the file cannot be read or is not a version-1 token file.

    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("version") != FILE_VERSION:
            raise TokenFileError(f"{path}: unknown token file version")
        rows = document["tokens"]
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise TokenFileError(f"{path}: `tokens` is not a list of objects")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TokenFileError(f"{path}: unreadable token file ({type(exc).__name__})") from exc
    return rows


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Replace the file with these rows: a reader sees the old file or the new, never half."""
    document = {"version": FILE_VERSION, "tokens": rows}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file 0600: hashes are not secrets, but nobody else needs them.
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
