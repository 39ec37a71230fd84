"""Canonical bytes and the hash chain: the at-rest contract that auditors recompute."""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS_HASH = "0" * 64
#: Fields that record a fact's place in the chain; they are not part of its content.
CHAIN_FIELDS = frozenset({"seq", "prev_hash", "hash"})


def canonical_bytes(wire: dict[str, Any]) -> bytes:
    """Serialise a fact's JSON wire form with sorted keys and no spaces, chain fields left out."""
    content = {key: value for key, value in wire.items() if key not in CHAIN_FIELDS}
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def chain_hash(prev_hash: str, content: bytes) -> str:
    """Return sha256(prev_hash_hex || canonical_bytes) as lowercase hex."""
    return hashlib.sha256(prev_hash.encode("ascii") + content).hexdigest()
