"""Place accepted facts on the hash chain (pure): seq, prev_hash and hash for each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from schemas import canonical_bytes, chain_hash


@dataclass(frozen=True, slots=True)
class LogHead:
    """Position and hash of the last entry (seq 0 and the genesis hash for an empty log)."""

    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class Entry:
    """One fact as it sits in the log and travels on the wire."""

    seq: int
    event_id: UUID
    event_type: str
    source: str
    source_ref: str
    content: bytes  # canonical bytes hashed into the chain
    prev_hash: str
    hash: str

    def wire(self) -> bytes:
        """The published message: the content with its chain fields appended.

        Readers recompute the hash with `canonical_bytes`, which drops the chain fields and
        sorts keys, so appending them here (instead of re-serialising) is enough.
        """
        chain_fields = f',"seq":{self.seq},"prev_hash":"{self.prev_hash}","hash":"{self.hash}"}}'
        return self.content[:-1] + chain_fields.encode("ascii")


def chain(wires: Sequence[dict[str, Any]], head: LogHead) -> list[Entry]:
    """Chain facts (JSON wire forms) after `head`, in the order given."""
    entries = []
    prev = head.hash
    for offset, wire in enumerate(wires, start=1):
        content = canonical_bytes(wire)
        digest = chain_hash(prev, content)
        entries.append(
            Entry(
                seq=head.seq + offset,
                event_id=UUID(wire["event_id"]),
                event_type=wire["event_type"],
                source=wire["source"],
                source_ref=wire["source_ref"],
                content=content,
                prev_hash=prev,
                hash=digest,
            )
        )
        prev = digest
    return entries
