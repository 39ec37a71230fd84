"""Compare an exported log with the heads ingest published outside its file (pure).

A hash chain alone cannot show a log that was edited and then re-hashed from the edit to its
end: it verifies on its own. So ingest publishes its head (seq, hash) on
`<ns>.anchor.ingest.head`, a stream that denies deletes and purges, and the entry at an
already published seq of such a log no longer has the published hash. The check is pure over
the heads and a lookup of the log's hash at a seq; `adapters/bundle_reader.py` reads those
hashes, and ingest's published `read_heads` fetches the heads from NATS.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

__all__ = ["heads_problems", "parse_heads"]


def parse_heads(lines: Iterable[bytes]) -> list[tuple[int, str, datetime]]:
    """(seq, hash, published_at) of each published head message.

    Raises:
        ValueError: a line is not a head message.

    """
    heads = []
    for line in lines:
        if not line.strip():
            continue
        body = json.loads(line)
        heads.append(
            (int(body["seq"]), str(body["hash"]), datetime.fromisoformat(body["published_at"]))
        )
    return heads


def heads_problems(
    heads: Sequence[tuple[int, str, datetime]],
    hashes: Mapping[int, str],
    *,
    last_seq: int,
    until: datetime | None = None,
) -> list[str]:
    """What disagrees between the log and the heads published up to `until` (empty: nothing).

    Args:
        heads: the published heads, (seq, hash, published_at).
        hashes: the log's hash at each of those seqs it holds.
        last_seq: the log's last seq.
        until: ignore heads published after this (the bundle's creation time).

    """
    problems = []
    for seq, digest, published_at in heads:
        if until is not None and published_at > until:
            continue
        if seq > last_seq or seq not in hashes:
            problems.append(
                f"ingest_heads: head {seq} was published at {published_at.isoformat()} but the "
                f"log ends at seq {last_seq}: entries were removed"
            )
        elif hashes[seq] != digest:
            problems.append(
                f"ingest_heads: entry {seq} hashes to {hashes[seq][:12]}… but {digest[:12]}… was "
                f"published for it at {published_at.isoformat()}: the log was rewritten and "
                "re-hashed after that head was published"
            )
    return problems
