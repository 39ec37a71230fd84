"""Chains for the verifier's tests, built by the services' own chaining code, and tamperings."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import NAMESPACE_URL, uuid5

from schemas import GENESIS_HASH, Role, Urgency, canonical_bytes, chain_hash
from services.audit.core.verify import ChainRow, Expected, audit_trail_row
from services.ingest.core.chain import LogHead, chain
from services.notify.core.audit import ChainHead, intended_fact, link, sent_fact
from services.notify.core.plan import NotificationPlan

T0 = datetime(2024, 3, 1, 2, 0, tzinfo=UTC)


def _wire(seq: int) -> dict[str, object]:
    return {
        "event_id": str(uuid5(NAMESPACE_URL, f"event-{seq}")),
        "event_type": "lab_result_recorded",
        "schema_version": 1,
        "trial_id": "NCT01724398",
        "site_id": "S01",
        "participant_id": f"P-{seq % 7:03d}",
        "occurred_at": (T0 + timedelta(hours=seq)).isoformat(),
        "recorded_at": (T0 + timedelta(hours=seq, minutes=5)).isoformat(),
        "source": "lab",
        "source_ref": f"LAB-{seq}",
        "payload": {"loinc": "1975-2", "result": {"value": seq, "unit": "umol/L"}},
    }


def event_log(n: int) -> list[ChainRow]:
    """n entries chained by ingest's own `chain`, as `reader` turns Parquet rows into rows."""
    wires = [_wire(seq) for seq in range(1, n + 1)]
    rows = []
    for wire, entry in zip(wires, chain(wires, LogHead(0, GENESIS_HASH)), strict=True):
        columns = {
            key: datetime.fromisoformat(str(wire[key])) if key.endswith("_at") else wire[key]
            for key in ("event_id", "event_type", "participant_id", "occurred_at", "recorded_at")
        }
        rows.append(ChainRow(entry.seq, entry.content, entry.prev_hash, entry.hash, columns))
    return rows


def _plan(index: int) -> NotificationPlan:
    signal = uuid5(NAMESPACE_URL, f"signal-{index // 2}")
    return NotificationPlan(
        notification_id=uuid5(NAMESPACE_URL, f"notification-{index}"),
        signal_id=signal,
        trial_id="NCT01724398",
        site_id="S01",
        participant_id="P-001",
        role=Role.SAFETY_OFFICER,
        address=f"so{index}@trial.example",
        urgency=Urgency.U0,
        subject="SAE",
        message_id=f"<{index}@safetymon>",
        template="signal",
        context={},
    )


def audit_trail(n: int) -> list[ChainRow]:
    """n notify audit entries (intended, sent, ...) chained by notify's own `link`."""
    facts = []
    for index in range(n):
        plan = _plan(index // 2)
        at = T0 + timedelta(minutes=index)
        facts.append(
            intended_fact(plan, now=at)
            if index % 2 == 0
            else sent_fact(plan, attempt=1, smtp_reply="250 ok", now=at)
        )
    entries, _ = link(ChainHead(), facts)
    return [
        audit_trail_row(
            e.seq,
            e.wire,
            e.prev_hash,
            e.hash,
            columns={
                "event_id": str(e.event_id),
                "payload.notification_id": str(e.notification_id),
                "recorded_at": e.recorded_at,
            },
        )
        for e in entries
    ]


def expected(rows: Sequence[ChainRow]) -> Expected:
    """What a manifest written for these rows records."""
    return Expected(rows=len(rows), last_seq=rows[-1].seq if rows else None, head=rows[-1].hash)


def flip_byte(rows: Sequence[ChainRow], seq: int) -> list[ChainRow]:
    """One byte of one entry's content changed; nothing re-hashed."""
    out = list(rows)
    row = out[seq - 1]
    content = bytearray(row.content)
    at = content.index(b'"value":') + len(b'"value":') if b'"value":' in content else 10
    content[at] = ord("9") if content[at] != ord("9") else ord("8")
    out[seq - 1] = dataclasses.replace(row, content=bytes(content))
    return out


def edit_wire(rows: Sequence[ChainRow], seq: int) -> list[ChainRow]:
    """An audit-trail entry's wire form edited (its SMTP reply), nothing re-hashed."""
    out = list(rows)
    row = out[seq - 1]
    document = json.loads(row.content)
    document["payload"]["address"] = "someone.else@example.org"
    out[seq - 1] = dataclasses.replace(row, content=canonical_bytes(document))
    return out


def rehash_from(rows: Sequence[ChainRow], seq: int, content: bytes) -> list[ChainRow]:
    """Entry `seq` gets new content and its hash is recomputed (a careful forger's edit)."""
    out = list(rows)
    row = out[seq - 1]
    digest = chain_hash(row.prev_hash, content)
    claimed = None if row.claimed is None else (row.seq, row.prev_hash, digest)
    out[seq - 1] = dataclasses.replace(
        row, content=content, hash=digest, columns={}, claimed=claimed
    )
    return out


def delete(rows: Sequence[ChainRow], seq: int, *, renumber: bool = False) -> list[ChainRow]:
    """Entry `seq` removed; with renumber the later seqs close the gap."""
    out = [row for row in rows if row.seq != seq]
    return _renumbered(out) if renumber else out


def swap(rows: Sequence[ChainRow], seq: int, *, renumber: bool = False) -> list[ChainRow]:
    """Entries `seq` and `seq + 1` change places in the file."""
    out = list(rows)
    out[seq - 1], out[seq] = out[seq], out[seq - 1]
    return _renumbered(out) if renumber else out


def insert_forged(rows: Sequence[ChainRow], after: int, *, renumber: bool = True) -> list[ChainRow]:
    """A forged entry, correctly chained to seq `after`, slipped in after it."""
    prev = rows[after - 1].hash if after else GENESIS_HASH
    content = canonical_bytes({"event_type": "forged", "payload": {"value": 1}})
    forged = ChainRow(after + 1, content, prev, chain_hash(prev, content))
    out = [*rows[:after], forged, *rows[after:]]
    return _renumbered(out) if renumber else out


def _renumbered(rows: Sequence[ChainRow]) -> list[ChainRow]:
    return [
        dataclasses.replace(
            row,
            seq=index,
            claimed=None if row.claimed is None else (index, row.claimed[1], row.claimed[2]),
        )
        for index, row in enumerate(rows, start=1)
    ]
