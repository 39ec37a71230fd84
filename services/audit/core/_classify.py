"""Explain the first break of a hash chain (pure): which tampering the rows around it show.

Seq is not part of the hashed content, so an attacker may renumber freely; the links
(`prev_hash`) and the rows after the break are the evidence:
- the seq is not the next position: a gap is `deleted`, a repeat is `inserted`, the missing
  seq further on is `reordered`, and an entry that still links correctly had its seq `edited`;
- the entry does not link to its predecessor: a copy of an earlier entry, or an entry the
  chain skips (a later entry links to the predecessor), is `inserted`; the predecessor's own
  successor sitting elsewhere is `reordered`; an entry linking further back means the ones
  between are `inserted`; a link to a hash no entry has is `deleted` when the file holds
  fewer entries than the manifest, else the predecessor was `edited` and re-hashed;
- the content does not hash to the stored hash: `edited` (the next entry still links to the
  stored hash), or `inserted` when the next entry links past it.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas import GENESIS_HASH, chain_hash
from services.audit.core.chain import Break, ChainRow


def seq_break(rows: Sequence[ChainRow], index: int, prev: str) -> Break:
    """The row at `index` does not hold seq index + 1."""
    row, want = rows[index], index + 1
    if row.seq < 1:
        return Break("edited", want, index, f"the seq column holds {row.seq}, not a position")
    if row.seq < want:
        return Break("inserted", row.seq, index, f"a second entry claims seq {row.seq}")
    if any(later.seq == want for later in rows[index + 1 :]):
        detail = f"seq {row.seq} comes before seq {want}: entries are out of order"
        return Break("reordered", want, index, detail)
    if row.prev_hash == prev and chain_hash(prev, row.content) == row.hash:
        detail = f"the entry after seq {want - 1} links to it correctly but claims seq {row.seq}"
        return Break("edited", want, index, detail)
    missing = f"seq {want}" if row.seq == want + 1 else f"seqs {want}-{row.seq - 1}"
    return Break(
        "deleted", want, index, f"{missing} missing: seq {want - 1} is followed by seq {row.seq}"
    )


def link_break(rows: Sequence[ChainRow], index: int, prev: str, *, short: bool) -> Break:
    """The row at `index` holds the right seq but does not link to its predecessor."""
    row = rows[index]
    copied = next((r for r in rows[:index] if r.hash == row.hash), None)
    if copied is not None:
        return Break("inserted", row.seq, index, f"a copy of seq {copied.seq}")
    if chain_hash(row.prev_hash, row.content) != row.hash:
        return _unsound_link(rows, index, prev)
    resume = _resumes(rows, index, prev)
    if resume is not None:
        return _moved_or_inserted(rows, index, resume)
    skipped = _links_back_to(rows, index)
    if skipped is not None:
        detail = (
            f"seq {row.seq} links to {_name(rows, skipped - 1)}: the {index - skipped} "
            f"entries between are not in the chain"
        )
        return Break("inserted", rows[skipped].seq, skipped, detail)
    return _unknown_link(rows, index, short=short)


def content_break(rows: Sequence[ChainRow], index: int, prev: str) -> Break:
    """The row at `index` links correctly but its content does not hash to its stored hash."""
    row = rows[index]
    following = rows[index + 1] if index + 1 < len(rows) else None
    if following is not None and following.prev_hash == prev:
        detail = f"seq {row.seq} does not hash, and the next entry links past it to seq {index}"
        return Break("inserted", row.seq, index, detail)
    if following is None:
        evidence = "it is the last entry"
    elif following.prev_hash == row.hash:
        evidence = "the next entry still links to the stored hash"
    else:
        evidence = "its stored hash was changed as well"
    return Break("edited", row.seq, index, f"content does not match its hash ({evidence})")


def _unsound_link(rows: Sequence[ChainRow], index: int, prev: str) -> Break:
    row = rows[index]
    if chain_hash(prev, row.content) == row.hash:
        detail = f"the prev_hash column was altered: the entry hashes correctly after seq {index}"
        return Break("edited", row.seq, index, detail)
    if _resumes(rows, index, prev) is not None:
        detail = "the entry neither links nor hashes, and the chain resumes after it"
        return Break("inserted", row.seq, index, detail)
    return Break("edited", row.seq, index, "neither its link nor its content verifies")


def _resumes(rows: Sequence[ChainRow], index: int, prev: str) -> int | None:
    """First row after `index` that links to `prev`, where the chain continues."""
    return next((j for j in range(index + 1, len(rows)) if rows[j].prev_hash == prev), None)


def _moved_or_inserted(rows: Sequence[ChainRow], index: int, resume: int) -> Break:
    row = rows[index]
    successor = f"row {resume + 1} (seq {rows[resume].seq})"
    if any(other.hash == row.prev_hash for other in rows):
        detail = (
            f"seq {row.seq} holds an entry that belongs elsewhere in the chain; the entry "
            f"that follows seq {index} is {successor}"
        )
        return Break("reordered", row.seq, index, detail)
    detail = f"rows {index + 1}-{resume} are not in the chain: {successor} links to seq {index}"
    return Break("inserted", row.seq, index, detail)


def _links_back_to(rows: Sequence[ChainRow], index: int) -> int | None:
    """First skipped position when the row links to an entry before its predecessor."""
    target = rows[index].prev_hash
    if index >= 1 and target == GENESIS_HASH:
        return 0
    return next((m + 1 for m in range(index - 1) if rows[m].hash == target), None)


def _unknown_link(rows: Sequence[ChainRow], index: int, *, short: bool) -> Break:
    row = rows[index]
    if short or index == 0:
        detail = (
            f"seq {row.seq} links to {row.prev_hash[:12]}…, which no entry in the file has: "
            "entries before it were deleted (and the seqs renumbered)"
        )
        return Break("deleted", row.seq, index, detail)
    detail = (
        f"seq {index} was rewritten and re-hashed: seq {row.seq} still links to its "
        f"original hash {row.prev_hash[:12]}…"
    )
    return Break("edited", index, index - 1, detail)


def _name(rows: Sequence[ChainRow], position: int) -> str:
    return "the genesis hash" if position < 0 else f"seq {rows[position].seq}"
