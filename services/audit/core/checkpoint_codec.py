"""Replay checkpoints' contents (pure): what binds one to its configurations, and its body.

A checkpoint (`adapters/checkpoint_store.py` keeps them in files) holds a fold's state at a
log position. Its body is the fold's counts, open clocks, views, signals and participant
states as text lines; `configs_fingerprint` names the configurations the fold ran with up to
that position, so a replay under other configurations never starts from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from services.audit.core.fold import FoldState, ParticipantView
from services.audit.core.timeline import Activation

FORMAT: Final = "safetymon-replay-checkpoint"
FORMAT_VERSION: Final = 2  # 2: a line per signal and state (1 nested them in one JSON)
#: Take a checkpoint every this many log positions (and at the end of a complete replay).
EVERY: Final = 100_000


@dataclass(frozen=True, slots=True)
class Resumed:
    """A checkpoint a replay started from: its position and the chain hash it is bound to."""

    seq: int
    chain_hash: str
    fold: FoldState


def configs_fingerprint(activations: Sequence[Activation]) -> str:
    """sha256 of the configurations a fold ran with up to some position, and where each began.

    The first applies from the start whatever position its row names, so a history whose
    first row is at seq 1 and one configuration given for the whole log agree.
    """
    plain = [
        [0 if index == 0 else a.from_seq, _plain(a.config)] for index, a in enumerate(activations)
    ]
    # Not repr(): a set's order follows the per-process string hash seed.
    return hashlib.sha256(json.dumps(plain, sort_keys=True).encode("utf-8")).hexdigest()


def _plain(value: object) -> object:
    """`value` as JSON-ready data in one order whatever the process (sets sorted)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return {f.name: _plain(getattr(value, f.name)) for f in fields}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(item) for item in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def encode(fold: FoldState) -> bytes:
    """The body: one line of counts, clocks and views, then a line per signal and per state.

    Signals and states are JSON already; a line each keeps them as they are instead of
    escaping every quote of ~100 MB of JSON inside another JSON document (which made a save
    and a load cost about twice as much). Keys are JSON arrays, so a tab cannot occur in
    them, and JSON text holds no raw newline or tab.
    """
    meta = {
        "open_clocks": sorted([list(key) for key in fold.open_clocks]),
        "facts": fold.facts,
        "ticks": fold.ticks,
        "last_seq": fold.last_seq,
        "views": [_encode_view(v) for _, v in sorted(fold.views.items())],
    }
    lines = [f"M\t{_compact(meta)}"]
    lines.extend(
        f"S\t{_compact([seq, key[0], key[1], position])}\t{body}"
        for seq, key, position, body in fold.signals
    )
    lines.extend(
        f"P\t{_compact(list(key))}\t{text}" for key, text in sorted(fold.encoded().items())
    )
    return "\n".join(lines).encode("utf-8")


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _encode_view(view: ParticipantView) -> list[Any]:
    return [
        view.trial_id,
        view.participant_id,
        view.site_id,
        view.arm,
        view.status,
        view.facts,
        view.signals,
        _iso(view.first_recorded_at),
        _iso(view.last_recorded_at),
    ]


def decode(body: bytes) -> FoldState:
    """Read `encode`'s lines back; states stay JSON until a fact needs them."""
    lines = body.decode("utf-8").split("\n")
    tag, meta_text = lines[0].split("\t", 1)
    if tag != "M":
        raise ValueError("a checkpoint body starts with its counts")
    meta = json.loads(meta_text)
    signals: list[tuple[int, tuple[str, str], int, str]] = []
    stored: dict[tuple[str, str], str] = {}
    for line in lines[1:]:
        tag, key_text, text = line.split("\t", 2)
        key = json.loads(key_text)
        if tag == "S":
            seq, trial, participant, position = key
            signals.append((seq, (trial, participant), position, text))
        elif tag == "P":
            stored[(key[0], key[1])] = text
        else:
            raise ValueError(f"unknown checkpoint line {tag!r}")
    views = (_decode_view(item) for item in meta["views"])
    return FoldState(
        stored=stored,
        open_clocks={(t, p) for t, p in meta["open_clocks"]},
        facts=int(meta["facts"]),
        ticks=int(meta["ticks"]),
        last_seq=meta["last_seq"],
        views={(v.trial_id, v.participant_id): v for v in views},
        signals=signals,
    )


def _decode_view(item: Iterable[Any]) -> ParticipantView:
    trial, participant, site, arm, status, facts, signals, first, last = item
    return ParticipantView(
        trial, participant, site, arm, status, facts, signals, _dt(first), _dt(last)
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
