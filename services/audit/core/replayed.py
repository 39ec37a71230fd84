"""What a replay gives (pure): re-derived signals, participants, and how each partition began.

A replay folds its partitions apart (`adapters/replayer.py`); `merge` puts their results
back into the one answer a single fold would give.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from schemas import SIGNAL_ADAPTER, SignalRaised, SignalUpdated, canonical_bytes
from services.audit.core import steps
from services.audit.core.fold import FoldState, ParticipantView
from services.audit.core.timeline import Timeline

__all__ = ["Part", "ParticipantView", "ReplayResult", "ReplayedSignal", "Resumption", "merge"]


class ReplayedSignal:
    """A re-derived signal and the log position of the fact that raised it.

    A replay keeps each signal as the JSON the engine's model wrote and builds the model only
    when asked (`signal`): validating tens of thousands of signal models costs seconds that a
    replay read for its counts, or compared byte for byte, does not need. Equal when the
    positions and the canonical bytes are.
    """

    __slots__ = ("_body", "_signal", "seq")

    def __init__(
        self, seq: int, signal: SignalRaised | SignalUpdated | None = None, *, body: str = ""
    ) -> None:
        if signal is None and not body:
            raise ValueError("a replayed signal needs its model or its JSON")
        self.seq = seq
        self._signal = signal
        self._body = body

    @property
    def signal(self) -> SignalRaised | SignalUpdated:
        """The signal's model (validated from its JSON on first use)."""
        if self._signal is None:
            self._signal = SIGNAL_ADAPTER.validate_json(self._body)
        return self._signal

    @property
    def canonical(self) -> bytes:
        """The signal's canonical bytes (what a hash or a byte comparison uses)."""
        if self._signal is None:  # the model's JSON holds the same values as its dump
            return canonical_bytes(json.loads(self._body))
        return canonical_bytes(self._signal.model_dump(mode="json"))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReplayedSignal):
            return NotImplemented
        return self.seq == other.seq and self.canonical == other.canonical

    def __hash__(self) -> int:
        return hash((self.seq, self.canonical))

    def __repr__(self) -> str:
        return f"ReplayedSignal(seq={self.seq}, signal={self.signal!r})"


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What the system knew (facts, participants) and decided (signals) at `as_of`.

    `facts` counts the participants' facts; `ticks` the log's clock ticks (`last_seq`
    covers both: it is the log position the replay reached).
    """

    as_of: datetime | None
    config_version: str
    rules: tuple[tuple[str, int], ...]
    facts: int
    last_seq: int | None
    participants: tuple[ParticipantView, ...]
    signals: tuple[ReplayedSignal, ...]
    ticks: int = 0
    #: Per partition, where its fold began (a verified checkpoint, or the first entry).
    resumptions: tuple[Resumption, ...] = ()
    #: (first log position, configuration version) of each configuration the replay folded
    #: with, from the bundle's history; empty when one configuration was given for all.
    configs: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Resumption:
    """How a partition's fold began: from the first entry, or from a verified checkpoint."""

    partition: tuple[int, int]
    from_seq: int | None = None  # the checkpoint's log position; None: folded from the start
    chain_hash: str | None = None  # the log's chain hash there, which the checkpoint matched
    saved: int = 0  # checkpoints this fold wrote


@dataclass(frozen=True, slots=True)
class Part:
    """One partition's fold and how it began."""

    fold: FoldState
    resumption: Resumption


def merge(parts: list[Part], *, as_of: datetime | None, timeline: Timeline) -> ReplayResult:
    """The partitions' folds as the one result a single fold would give."""
    # A participant's signals stay in one partition in fold order. A fact's signals all
    # belong to its participant; a tick's come out of `evaluate_tick` in participant-key
    # order. Sorting on (seq, participant key, position in its fold) therefore restores
    # the single-fold order across partitions, ticks included.
    tagged = sorted(
        (item for part in parts for item in part.fold.signals),
        key=lambda item: (item[0], item[1], item[2]),
    )
    signals = tuple(ReplayedSignal(seq, body=body) for seq, _, _, body in tagged)
    participants = sorted(
        (view for part in parts for view in part.fold.views.values()),
        key=lambda v: (v.trial_id, v.participant_id),
    )
    seqs = [part.fold.last_seq for part in parts if part.fold.last_seq is not None]
    last_seq = max(seqs) if seqs else None
    # What was live at the replay's last position; `configs` lists every one it folded with.
    config = timeline.at(last_seq or 0)
    used = timeline.upto(last_seq) if timeline.recorded else ()
    return ReplayResult(
        as_of=as_of,
        config_version=config.version,
        rules=steps.rule_versions(config),
        configs=tuple((a.from_seq, a.config.version) for a in used),
        facts=sum(part.fold.facts for part in parts),
        last_seq=last_seq,
        participants=tuple(participants),
        signals=signals,
        # Every partition reads every tick: count them once.
        ticks=max((part.fold.ticks for part in parts), default=0),
        resumptions=tuple(part.resumption for part in parts),
    )
