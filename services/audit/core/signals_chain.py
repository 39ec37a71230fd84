"""Verify the rules' signals chain (pure): the decisions, beside the facts and the deliveries.

The rules service chains each outbox row as `hash = sha256(prev_hash || "<seq>:" || body)`
(services/rules/adapters/_duckdb_sql.py `chain_signals`); this module recomputes it from the
bundle's `signals.parquet` independently of that code, as the auditor's own check. The seq
is inside the hashed bytes, so a renumbered row does not verify either.

A rules file upgraded in place keeps its older rows without a hash: leading rows with none
are counted as "not chained (older version)", and the chain starts after them from the
genesis hash. A row without a hash after a chained one is an error: the upgrade happens once.
The walk and the classification of a break are `verify_chain`'s (verify.py
`verify_signals`), on positions counted from the first chained row; the reported seq is
translated back to the outbox seq.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from services.audit.core.chain import Break, ChainReport


@dataclass(frozen=True, slots=True)
class SignalRow:
    """One row of signals.parquet: outbox seq, body bytes, chain fields (None: NULL)."""

    seq: int
    body: bytes
    prev_hash: str | None
    hash: str | None
    #: The rules partition the row came from (a partitioned deployment: one chain each).
    partition: int | None = None


@dataclass(frozen=True, slots=True)
class SignalsReport(ChainReport):
    """A chain report that also counts the leading rows written before the chain."""

    unchained: int = 0


def signal_content(seq: int, body: bytes) -> bytes:
    """The bytes a signal row hashes: its seq in decimal ASCII, a colon, its body as stored."""
    return f"{seq}:".encode("ascii") + body


def translated(problem: Break, unchained: int) -> Break:
    """A break found on shifted positions, given back as outbox seq and file row."""
    if not unchained:
        return problem
    note = f" (seqs in this finding count from the first chained row, outbox seq {unchained + 1})"
    return replace(
        problem,
        seq=None if problem.seq is None else problem.seq + unchained,
        position=problem.position + unchained,
        detail=problem.detail + note,
    )
