"""Verify notify's audit trail as the notify stream carries it (pure).

Each published notify fact carries its trail position and hash chain (`seq`, `prev_hash`,
`hash` over the canonical bytes of the rest), so an auditor can check from the stream alone,
without opening notify's file, that nothing is missing, reordered or edited.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from schemas import GENESIS_HASH, canonical_bytes, chain_hash

_CHAIN_FIELDS = ("seq", "prev_hash", "hash")


@dataclass(frozen=True, slots=True)
class TrailCheck:
    """How much of the trail verifies, its head, and where it first breaks."""

    length: int
    head: str
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every entry seen verifies."""
        return self.problem is None


def _problem(body: Mapping[str, Any], seq: int, prev: str) -> str | None:
    if body.get("seq") != seq:
        return f"entry {seq} is missing (found {body.get('seq')})"
    if body.get("prev_hash") != prev:
        return f"entry {seq}: prev_hash does not match entry {seq - 1}"
    wire = {k: v for k, v in body.items() if k not in _CHAIN_FIELDS}
    if chain_hash(prev, canonical_bytes(wire)) != body.get("hash"):
        return f"entry {seq}: content does not match its hash"
    return None


def verify_trail(bodies: Iterable[Mapping[str, Any]]) -> TrailCheck:
    """Check the chain in trail order (by `seq`)."""
    ordered = sorted(bodies, key=lambda b: int(b.get("seq") or 0))
    prev, seq = GENESIS_HASH, 0
    for body in ordered:
        problem = _problem(body, seq + 1, prev)
        if problem is not None:
            return TrailCheck(seq, prev, problem)
        seq, prev = seq + 1, str(body["hash"])
    return TrailCheck(seq, prev)
