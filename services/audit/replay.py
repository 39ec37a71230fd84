"""Replay a bundle's log as of a recorded time: what the system knew and decided then (shell).

Reads only the bundle (never a live file, never NATS, never SMTP): the facts recorded at or
before `as_of` are folded, in log order, through the same per-fact step the live rules
service runs, with the trial configuration given; the log's `clock_ticked` entries go
through the same per-tick step (SAE-02's reminders and overdue alerts), fanned out to the
participants with an open clock, as the live service does. Participants are independent, so
a large log is split by participant over worker processes (each worker sees every tick) and
the signals are merged back into log order; the result is the same as a single fold.

Given a checkpoint directory, each partition starts from the newest verified checkpoint
(`checkpoint`: bound to the log's chain hash and to the code and configuration) its replay
reaches, folds only what follows, and leaves checkpoints for the next replay; the result
is the same, byte for byte, as a fold from the first entry.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from schemas import SIGNAL_ADAPTER, SignalRaised, SignalUpdated, canonical_bytes
from services.audit import _engine, checkpoint
from services.audit._fold import FoldState, ParticipantView, fold
from services.audit.configs import Timeline
from services.audit.history import hash_at, iter_facts, log_extent
from services.audit.manifest import EVENT_LOG
from services.rules.core.config import TrialConfig

__all__ = [
    "ParticipantView",
    "ReplayResult",
    "ReplayedSignal",
    "Resumption",
    "replay_bundle",
    "replay_log",
    "replay_partition",
]

#: Below this many log rows a second process costs more than it saves.
PARALLEL_FROM_ROWS: Final = 50_000
Key = tuple[str, str]


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
class _Part:
    fold: FoldState
    resumption: Resumption


def replay_log(
    log: Path,
    *,
    as_of: datetime | None,
    config: TrialConfig | Timeline,
    workers: int | None = None,
    checkpoints: Path | None = None,
    every: int = checkpoint.EVERY,
) -> ReplayResult:
    """Replay `log` (an event_log.parquet) as of `as_of` with `config`.

    Args:
        log: the bundle's event log file.
        as_of: recorded-time bound, inclusive; None replays everything.
        config: the trial configuration the rules ran with, or the timeline of those live
            over the log (`configs.read_timeline`): each fact is folded with the one live at
            its position.
        workers: processes to use; None picks one per core for large logs.
        checkpoints: a directory of verified checkpoints (see `checkpoint`) to start from
            and to add to; None folds from the first entry and keeps nothing.
        every: with `checkpoints`, take one every this many log positions.

    """
    timeline = config if isinstance(config, Timeline) else Timeline.single(config)
    count = _workers(log, workers)
    jobs = [(log, as_of, timeline, (i, count), checkpoints, every) for i in range(count)]
    if count == 1:
        parts = [_replay_part(*jobs[0])]
    else:
        context = multiprocessing.get_context("fork")  # children inherit the imports: no start-up
        with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
            parts = [future.result() for future in [pool.submit(_replay_part, *j) for j in jobs]]
    return _merge(parts, as_of=as_of, timeline=timeline)


def replay_bundle(
    bundle: Path,
    *,
    as_of: datetime | None,
    config: TrialConfig | Timeline,
    workers: int | None = None,
    checkpoints: Path | None = None,
) -> ReplayResult:
    """Replay the event log of a bundle directory."""
    return replay_log(
        bundle / EVENT_LOG, as_of=as_of, config=config, workers=workers, checkpoints=checkpoints
    )


def _workers(log: Path, wanted: int | None) -> int:
    if wanted is not None:
        return max(1, wanted)
    import pyarrow.parquet as pq

    rows = pq.ParquetFile(log).metadata.num_rows
    return 1 if rows < PARALLEL_FROM_ROWS else max(1, min(os.cpu_count() or 1, 8))


def replay_partition(
    log: Path, as_of: datetime | None, config: TrialConfig | Timeline, partition: tuple[int, int]
) -> FoldState:
    """Fold one partition of the participants (the whole log for `(0, 1)`) from the start."""
    return fold(iter_facts(log, as_of=as_of, partition=partition), config)


def _replay_part(
    log: Path,
    as_of: datetime | None,
    timeline: Timeline,
    partition: tuple[int, int],
    directory: Path | None,
    every: int,
) -> _Part:
    with _no_cycle_collection():
        part = _fold_part(log, as_of, timeline, partition, directory, every)
    # The merge needs the views, signals and counts only. A worker process pickles what it
    # returns: the projections (millions of objects on a long log) cost more to send back
    # than the whole fold after a checkpoint.
    part.fold.states.clear()
    part.fold.stored.clear()
    part.fold.changed.clear()
    return part


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause Python's cycle collector while a partition folds.

    A fold builds millions of long-lived, acyclic objects (frozen states, observations,
    tuples); the collector kept re-scanning them for cycles they cannot form: 30% of a
    300,000-event replay's CPU (44 s against 34 s, bench/replay_1m.py's log). Reference
    counting still frees everything as usual; the few cycles a fold can make (a caught
    exception's traceback) are collected once the collector is back on.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _fold_part(
    log: Path,
    as_of: datetime | None,
    timeline: Timeline,
    partition: tuple[int, int],
    directory: Path | None,
    every: int,
) -> _Part:
    if directory is None:
        return _Part(replay_partition(log, as_of, timeline, partition), Resumption(partition))
    store = checkpoint.Store(directory, checkpoint.code_fingerprint(), partition)
    last, first_left_out = log_extent(log, as_of)

    def configs(seq: int) -> str:
        return checkpoint.configs_fingerprint(timeline.upto(seq))

    resumed = _resume(store, log, below=first_left_out, last=last, configs=configs)
    after = None if resumed is None else resumed.seq
    saved: list[int] = []

    def save(seq: int, state: FoldState) -> None:
        digest = hash_at(log, seq)
        if digest is not None and (resumed is None or seq > resumed.seq):
            store.save(seq, digest, state, configs=configs(seq))
            saved.append(seq)

    # Positions every fact before which this replay folds (never inside an as-of cut).
    limit = (last or 0) if first_left_out is None else first_left_out - 1
    marks = range(((after or 0) // every + 1) * every, limit + 1, every) if every > 0 else ()
    result = fold(
        iter_facts(log, as_of=as_of, partition=partition, after_seq=after),
        timeline,
        start=None if resumed is None else resumed.fold,
        boundaries=marks,
        on_boundary=save,
    )
    if first_left_out is None and last is not None and last not in saved and last != after:
        save(last, result)  # the end of a complete replay: the next one starts here
    how = Resumption(
        partition,
        from_seq=after,
        chain_hash=None if resumed is None else resumed.chain_hash,
        saved=len(saved),
    )
    return _Part(result, how)


def _resume(
    store: checkpoint.Store,
    log: Path,
    *,
    below: int | None,
    last: int | None,
    configs: Callable[[int], str],
) -> checkpoint.Resumed | None:
    """The newest checkpoint this replay may start from whose chain hash the log confirms."""
    for seq, path in store.candidates(below=below, last=last):
        digest = hash_at(log, seq)
        if digest is None:
            continue
        state = store.load(path, seq=seq, chain_hash=digest, configs=configs(seq))
        if state is not None:
            return checkpoint.Resumed(seq, digest, state)
    return None


def _merge(parts: list[_Part], *, as_of: datetime | None, timeline: Timeline) -> ReplayResult:
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
        rules=_engine.rule_versions(config),
        configs=tuple((a.from_seq, a.config.version) for a in used),
        facts=sum(part.fold.facts for part in parts),
        last_seq=last_seq,
        participants=tuple(participants),
        signals=signals,
        # Every partition reads every tick: count them once.
        ticks=max((part.fold.ticks for part in parts), default=0),
        resumptions=tuple(part.resumption for part in parts),
    )
