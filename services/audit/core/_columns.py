"""The columns copied beside a chain's hashed content, checked against it (pure).

A queryable column that disagrees with the hashed content is an edit the hashes alone would
miss: an auditor filtering on `participant_id` would read the column, not the content.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache

from schemas import canonical_bytes
from services.audit.core.chain import ChainRow


def column_mismatch(row: ChainRow) -> str | None:
    """Name the first column whose value differs from the hashed content, if any."""
    if not row.columns:
        return None
    try:
        content = json.loads(row.content)
    except ValueError:
        return "the hashed content is not JSON"
    for path, value in row.columns.items():
        if not _same(_lookup(content, path), value):
            return f"column {path} differs from the hashed content"
    return None


def _lookup(content: object, path: str) -> object:
    for part in _parts(path):
        content = content.get(part) if isinstance(content, dict) else None
    return content


@lru_cache(maxsize=64)
def _parts(path: str) -> tuple[str, ...]:
    # "a.b#column" names the content path a.b for a column whose name differs (the key
    # must stay unique when two columns hold the same content value).
    return tuple(path.split("#", 1)[0].split("."))


def _same(stored: object, column: object) -> bool:
    if isinstance(column, datetime):
        try:
            return isinstance(stored, str) and datetime.fromisoformat(stored) == column
        except ValueError:
            return False
    return stored == column


def audit_trail_row(
    seq: int, wire: str, prev_hash: str, digest: str, *, columns: Mapping[str, object]
) -> ChainRow:
    """A notify audit-trail row: the hashed bytes are canonical_bytes of its wire form."""
    try:
        document = json.loads(wire)
    except ValueError:
        return ChainRow(seq, wire.encode("utf-8"), prev_hash, digest, columns, None)
    if not isinstance(document, dict):
        return ChainRow(seq, wire.encode("utf-8"), prev_hash, digest, columns, None)
    claimed = (document.get("seq"), document.get("prev_hash"), document.get("hash"))
    return ChainRow(seq, canonical_bytes(document), prev_hash, digest, columns, claimed)
