"""The hash chain: each entry commits to its content and to everything before it."""

from __future__ import annotations

import hashlib
import json
from uuid import uuid4

from schemas import GENESIS_HASH
from services.ingest.core.chain import LogHead, chain


def _wire(n: int) -> dict[str, object]:
    return {
        "event_id": str(uuid4()),
        "event_type": "x",
        "source": "s",
        "source_ref": str(n),
        "n": n,
    }


def test_chain_links_each_entry_to_the_previous_hash() -> None:
    """hash_n = sha256(hash_{n-1} || canonical_json(event_n)); genesis is 64 zeros."""
    wires = [_wire(1), _wire(2)]

    first, second = chain(wires, LogHead(0, GENESIS_HASH))

    content = json.dumps(wires[0], sort_keys=True, separators=(",", ":")).encode()
    assert first.hash == hashlib.sha256(GENESIS_HASH.encode() + content).hexdigest()
    assert (first.seq, second.seq, second.prev_hash) == (1, 2, first.hash)


def test_chain_continues_from_the_head() -> None:
    """Appending in two batches gives the same chain as one batch."""
    wires = [_wire(i) for i in range(5)]

    whole = chain(wires, LogHead(0, GENESIS_HASH))
    part = chain(wires[:2], LogHead(0, GENESIS_HASH))
    rest = chain(wires[2:], LogHead(part[-1].seq, part[-1].hash))

    assert [e.hash for e in whole] == [e.hash for e in (*part, *rest)]


def test_wire_form_carries_chain_fields_and_content() -> None:
    """The published message is the content plus seq, prev_hash and hash."""
    (entry,) = chain([_wire(7)], LogHead(0, GENESIS_HASH))

    body = json.loads(entry.wire())

    assert (body["seq"], body["prev_hash"], body["hash"], body["n"]) == (
        1,
        GENESIS_HASH,
        entry.hash,
        7,
    )
