"""Dedupe keys and what makes a resubmission "the same" (pure).

A source record is identified by `(trial_id, site_id, source, source_ref)`: the trial and
site it belongs to scope the source's own key. A per-site submitter can only send facts of
its own site (scope.py), so a key it sends can never meet another site's: one site cannot
make another site's serious adverse event look like a duplicate, nor learn its event id.

A key seen again is a `duplicate` only when the content is the same; otherwise it is a
conflict, rejected, and the first record stands (a change is a `fact_corrected`).

"The same content" is compared on the canonical JSON bytes (sorted keys, no spaces; the
form the hash chain hashes) of the fact as ingest stores it, leaving out:
- what ingest assigns per submission: `event_id`, `recorded_at`, `actor` and the chain
  fields, so a resend later or by another token of the same site is still a duplicate;
- fields whose value is null, at any depth, so a record stored before an optional field
  existed equals its resubmission that now carries the field as null.
Everything the source said (times, participant, payload) and the normalised values ingest
derives from it are compared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

from schemas import ArrivingFact, Fact, canonical_bytes

#: (trial_id, site_id or None, source, source_ref)
DedupeKey = tuple[str, str | None, str, str]
_ASSIGNED: Final = frozenset({"event_id", "recorded_at", "actor", "seq", "prev_hash", "hash"})


@dataclass(frozen=True, slots=True)
class Known:
    """A logged fact under a dedupe key: its event id and its stored (hashed) content."""

    event_id: UUID
    content: bytes


def dedupe_key(fact: Fact) -> DedupeKey:
    """The scoped key of a fact."""
    return (fact.trial_id, fact.site_id, fact.source, fact.source_ref)


def compared_form(wire: dict[str, Any]) -> bytes:
    """The bytes two submissions of one key must share to count as the same record."""
    said = {k: _drop_nulls(v) for k, v in wire.items() if k not in _ASSIGNED and v is not None}
    return canonical_bytes(said)


def same_submission(stored: bytes, wire: dict[str, Any]) -> bool:
    """Whether a fact's stored content and a new wire form say the same thing."""
    try:
        logged = json.loads(stored)
    except ValueError:
        return False
    return isinstance(logged, dict) and compared_form(logged) == compared_form(wire)


def conflict_reason(index: int, fact: ArrivingFact, known: UUID) -> str:
    """Why item `index` is refused: its key names another record with other content."""
    where = f"site {fact.site_id}" if fact.site_id else f"trial {fact.trial_id}"
    return (
        f"item at index {index}: source_ref {fact.source_ref!r} of source {fact.source!r} is"
        f" already logged at {where} as event {known} with different content;"
        " nothing was stored for this item (send a fact_corrected to change that record)"
    )


def _drop_nulls(value: object) -> object:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value
