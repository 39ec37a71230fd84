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
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Final

from services.audit.adapters import checkpoint_store as checkpoint
from services.audit.adapters.log_reader import hash_at, iter_facts, log_extent
from services.audit.core.fold import FoldState, ParticipantView, fold
from services.audit.core.manifest import EVENT_LOG
from services.audit.core.replayed import (
    Part,
    ReplayedSignal,
    ReplayResult,
    Resumption,
    merge,
)
from services.audit.core.timeline import Timeline
from services.rules.published.model import TrialConfig

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
            over the log (`parquet_configs.read_timeline`): each fact is folded with the one live at
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
    return merge(parts, as_of=as_of, timeline=timeline)


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
) -> Part:
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
) -> Part:
    if directory is None:
        return Part(replay_partition(log, as_of, timeline, partition), Resumption(partition))
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
    return Part(result, how)


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
