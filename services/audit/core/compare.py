"""Compare the signals the live rules service raised with those a replay re-derives (pure).

The design promises the same signals, bit for bit, live or replayed. A bundle's
`signals.parquet` holds the bytes the live service published; a replay re-derives them from
the log with the same code. Signals are matched by id, and a match must have the same
canonical bytes (`schemas.canonical_bytes`: sorted keys, no spaces; what the replay's sha256
and the hash chains use), so every value of every field is compared.

Only live signals inside the replayed range are compared: those whose cause (the fact or
clock tick named by `causation_id`) is a log entry the replay folded, i.e. at seq <= its last
seq and recorded at or before its as-of time. A live signal whose cause is not on the
bundle's log at all is a difference: the export takes the rules snapshot before the log's, so
every cause the live service saw is on it.

A live service that had not yet evaluated the newest facts when the snapshot was taken shows
as `only_replay` signals at the end of the log: compare a bundle exported while the pipeline
was quiet, or offline.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from schemas import canonical_bytes
from services.audit.core.replayed import ReplayedSignal, ReplayResult

DifferenceKind = Literal["only_live", "only_replay", "different_bytes"]
_Replayed = tuple[ReplayedSignal, bytes, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class LiveSignal:
    """One signal the live service published, and where its cause sits on the log."""

    signal_id: str
    body: bytes
    cause_event_id: str | None
    rule_id: str | None = None
    participant_id: str | None = None
    #: The cause's log position and recorded time (None: the cause is not on the log).
    cause_seq: int | None = None
    cause_recorded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SignalDifference:
    """One signal on which the live run and the replay disagree."""

    kind: DifferenceKind
    signal_id: str
    seq: int | None
    rule_id: str | None
    participant_id: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class LiveComparison:
    """The verdict: how many signals were compared and every difference found."""

    identical: int
    live: int
    replayed: int
    #: Live signals whose cause lies after the replayed range (not compared).
    beyond: int
    differences: tuple[SignalDifference, ...]

    @property
    def ok(self) -> bool:
        """True when the live and replayed signals have the same ids and bytes."""
        return not self.differences


def compare(live: Iterable[LiveSignal], result: ReplayResult) -> LiveComparison:
    """Match live and replayed signals by id inside the replayed range; compare their bytes."""
    everything = {signal.signal_id: signal for signal in live}
    in_range = {sid: s for sid, s in everything.items() if _replayed(s, result)}
    replayed = _first_by_id(result.signals)
    differences = []
    identical = 0
    for sid, (item, canonical, document) in replayed.items():
        mine = everything.get(sid)
        if mine is None:
            differences.append(_difference("only_replay", item.seq, document, _ONLY_REPLAY))
            continue
        live_bytes = _canonical(mine.body)
        if live_bytes != canonical:
            detail = _bytes_detail(live_bytes, canonical)
            differences.append(_difference("different_bytes", item.seq, document, detail))
        else:
            identical += 1
    differences.extend(_only_live(s) for sid, s in in_range.items() if sid not in replayed)
    beyond = sum(1 for sid in everything if sid not in in_range and sid not in replayed)
    ordered = sorted(differences, key=lambda d: (d.seq is not None, d.seq or 0, d.signal_id))
    return LiveComparison(identical, len(in_range), len(replayed), beyond, tuple(ordered))


def _replayed(signal: LiveSignal, result: ReplayResult) -> bool:
    """Whether the replay folded this live signal's cause (else it was not compared)."""
    if signal.cause_seq is None:
        return True  # its cause is not on the log: nothing bounds it, so it is compared
    if result.last_seq is None or signal.cause_seq > result.last_seq:
        return False
    recorded = signal.cause_recorded_at
    return result.as_of is None or recorded is None or recorded <= result.as_of


def _first_by_id(signals: Iterable[ReplayedSignal]) -> dict[str, _Replayed]:
    """Each replayed signal by id, its canonical bytes and document (no model: that is slow).

    The live outbox keeps the first row of an id (ON CONFLICT DO NOTHING); so does this.
    """
    first: dict[str, _Replayed] = {}
    for item in signals:
        canonical = item.canonical
        document = json.loads(canonical)
        first.setdefault(str(document["event_id"]), (item, canonical, document))
    return first


def _canonical(body: bytes) -> bytes:
    try:
        return canonical_bytes(json.loads(body))
    except ValueError:
        return body  # not JSON: compared as it is, so it differs


_ONLY_REPLAY: Final = "the replay raises it; the live service did not"


def _difference(
    kind: DifferenceKind, seq: int, document: dict[str, Any], detail: str
) -> SignalDifference:
    payload = document.get("payload") or {}
    return SignalDifference(
        kind, str(document["event_id"]), seq, payload.get("rule_id"),
        document.get("participant_id"), detail,
    )  # fmt: skip


def _only_live(signal: LiveSignal) -> SignalDifference:
    if signal.cause_seq is None:
        detail = f"the live service raised it; its cause {signal.cause_event_id} is not on the log"
    else:
        detail = "the live service raised it; the replay does not"
    return SignalDifference(
        "only_live", signal.signal_id, signal.cause_seq, signal.rule_id,
        signal.participant_id, detail,
    )  # fmt: skip


def _bytes_detail(live: bytes, replayed: bytes) -> str:
    fields = _differing_fields(live, replayed)
    return "same id, different bytes" + (f": {', '.join(fields)} differ" if fields else "")


def _differing_fields(live: bytes, replayed: bytes, *, at_most: int = 5) -> list[str]:
    """Name the (dotted) fields whose values differ, to point the auditor at the change."""
    try:
        left, right = json.loads(live), json.loads(replayed)
    except ValueError:
        return ["the live body is not JSON"]
    found: list[str] = []
    _walk(left, right, "", found)
    return found[:at_most]


def _walk(left: object, right: object, path: str, found: list[str]) -> None:
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        for key in dict.fromkeys([*left, *right]):
            _walk(left.get(key), right.get(key), f"{path}.{key}" if path else str(key), found)
    elif left != right:
        found.append(path or "the whole body")
