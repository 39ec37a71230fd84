"""Checks ingest runs on its own log before it appends anything (pure: rows in, problem out).

The whole chain is `safetymon audit verify`'s job; at start ingest checks what it is about to
build on: the last entries (hash, link, seq), the head they end in, and a head published
outside the file earlier (`anchor`), which a log edited and re-hashed while ingest was stopped
no longer holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas import GENESIS_HASH, chain_hash
from services.ingest.core.chain import LogHead


@dataclass(frozen=True, slots=True)
class TailRow:
    """One stored entry as the integrity check reads it."""

    seq: int
    content: bytes
    prev_hash: str
    hash: str


def tail_problem(rows: Sequence[TailRow], *, count: int, before: str | None) -> str | None:
    """What is wrong with the log's last entries, or None.

    Args:
        rows: the last entries, in seq order, ending at the log's last entry.
        count: how many entries the log holds (seq must run 1..count without gaps).
        before: hash of the entry just before `rows[0]` (None when rows start at seq 1).

    """
    if not rows:
        return None if count == 0 else f"the log holds {count} entries but none was read"
    if rows[-1].seq != count:
        return f"the log holds {count} entries but its last seq is {rows[-1].seq}: gaps or reuse"
    prev = GENESIS_HASH if rows[0].seq == 1 else before
    for offset, row in enumerate(rows):
        if row.seq != rows[0].seq + offset:
            return f"seq {row.seq} follows seq {rows[0].seq + offset - 1}: entries were moved"
        if prev is not None and row.prev_hash != prev:
            return f"entry {row.seq} does not link to entry {row.seq - 1}: inserted or deleted"
        if chain_hash(row.prev_hash, row.content) != row.hash:
            return f"entry {row.seq} does not hash to its stored hash: its content was edited"
        prev = row.hash
    return None


def anchor_problem(anchor: LogHead, *, stored: str | None, head: LogHead) -> str | None:
    """Whether the log still holds the head published at `anchor.seq` (None: it does).

    Args:
        anchor: the latest head ingest published outside the file.
        stored: the log's own hash at `anchor.seq` (None when it has no such entry).
        head: the log's current head.

    """
    if anchor.seq > head.seq or stored is None:
        return (
            f"the log ends at seq {head.seq} but head {anchor.seq} was published: "
            "entries were removed or the file was replaced"
        )
    if stored != anchor.hash:
        return (
            f"entry {anchor.seq} hashes to {stored[:12]}… but {anchor.hash[:12]}… was published "
            "for it: the log was rewritten and re-hashed"
        )
    return None
