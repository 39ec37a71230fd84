"""Replay a bundle's log as of a recorded time: what the system knew and decided then (shell).

Reads only the bundle (never a live file, never NATS, never SMTP): the facts recorded at or
before `as_of` are folded, in log order, through the same per-fact step the live rules
service runs, with the trial configuration given; the log's `clock_ticked` entries go
through the same per-tick step (SAE-02's reminders and overdue alerts), fanned out to the
participants with an open clock, as the live service does. Participants are independent, so
a large log is split by participant over worker processes (each worker sees every tick) and
the signals are merged back into log order; the result is the same as a single fold.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Final

from safetymon.audit import _engine
from safetymon.audit.history import LoggedFact, iter_facts
from safetymon.audit.manifest import EVENT_LOG
from schemas import (
    SIGNAL_ADAPTER,
    ArrivingFact,
    ClockTicked,
    DeathRecorded,
    ParticipantEnrolled,
    ParticipantWithdrawn,
    SignalRaised,
    SignalUpdated,
    canonical_bytes,
)
from services.rules.core.config import TrialConfig

#: Below this many log rows a second process costs more than it saves.
PARALLEL_FROM_ROWS: Final = 50_000
Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class ParticipantView:
    """What the log said about one participant as of the replay time."""

    trial_id: str
    participant_id: str
    site_id: str | None
    arm: str | None = None
    status: str = "known"  # enrolled, withdrawn, died; "known" when no enrolment is on the log
    facts: int = 0
    signals: int = 0
    first_recorded_at: datetime | None = None
    last_recorded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ReplayedSignal:
    """A re-derived signal and the log position of the fact that raised it."""

    seq: int
    signal: SignalRaised | SignalUpdated

    @property
    def canonical(self) -> bytes:
        """The signal's canonical bytes (what a hash or a byte comparison uses)."""
        return canonical_bytes(self.signal.model_dump(mode="json"))


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


@dataclass
class _Partial:
    facts: int = 0
    ticks: int = 0
    last_seq: int | None = None
    participants: dict[Key, ParticipantView] = field(default_factory=dict)
    #: (seq, participant key, position in this fold, signal JSON): see `_merge`.
    signals: list[tuple[int, Key, int, str]] = field(default_factory=list)


def replay_log(
    log: Path,
    *,
    as_of: datetime | None,
    config: TrialConfig,
    workers: int | None = None,
) -> ReplayResult:
    """Replay `log` (an event_log.parquet) as of `as_of` with `config`.

    Args:
        log: the bundle's event log file.
        as_of: recorded-time bound, inclusive; None replays everything.
        config: the trial configuration the rules ran with.
        workers: processes to use; None picks one per core for large logs.

    """
    count = _workers(log, workers)
    if count == 1:
        parts = [replay_partition(log, as_of, config, (0, 1))]
    else:
        context = multiprocessing.get_context("fork")  # children inherit the imports: no start-up
        with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
            jobs = [
                pool.submit(replay_partition, log, as_of, config, (i, count)) for i in range(count)
            ]
            parts = [job.result() for job in jobs]
    return _merge(parts, as_of=as_of, config=config)


def replay_bundle(
    bundle: Path, *, as_of: datetime | None, config: TrialConfig, workers: int | None = None
) -> ReplayResult:
    """Replay the event log of a bundle directory."""
    return replay_log(bundle / EVENT_LOG, as_of=as_of, config=config, workers=workers)


def _workers(log: Path, wanted: int | None) -> int:
    if wanted is not None:
        return max(1, wanted)
    import pyarrow.parquet as pq

    rows = pq.ParquetFile(log).metadata.num_rows
    return 1 if rows < PARALLEL_FROM_ROWS else max(1, min(os.cpu_count() or 1, 8))


def replay_partition(
    log: Path, as_of: datetime | None, config: TrialConfig, partition: tuple[int, int]
) -> _Partial:
    """Fold one partition of the participants (the whole log for `(0, 1)`)."""
    return fold(iter_facts(log, as_of=as_of, partition=partition), config)


def fold(facts: Iterable[LoggedFact], config: TrialConfig) -> _Partial:
    """Fold facts in log order through the live per-fact step; collect views and signals.

    A clock tick goes through the live per-tick step with the states of the participants
    whose SAE-02 clock is open (tracked here as the live store's `open_clocks` query finds
    them), so a replay fires the reminders and overdue alerts the live service fired.
    """
    step, tick = _engine.stepper(config), _engine.ticker(config)
    states: dict[Key, _engine.State] = {}
    open_clocks: set[Key] = set()  # the keys `evaluate_tick` can act on; the rest it skips
    out = _Partial()
    for logged in facts:
        fact = logged.fact
        out.last_seq = logged.seq
        if isinstance(fact, ClockTicked):
            out.ticks += 1
            if not open_clocks:
                continue  # nothing to fan out to: evaluate_tick would change nothing
            ticked = tick({key: states[key] for key in open_clocks}, fact)
            for key, state in ticked.changed.items():
                states[key] = state
                _track_clock(open_clocks, key, state)
            for signal in ticked.signals:
                owner = (signal.trial_id, signal.participant_id)
                out.participants[owner] = _signalled(out.participants[owner])
                out.signals.append((logged.seq, owner, len(out.signals), signal.model_dump_json()))
            continue
        key = (fact.trial_id, fact.participant_id or "")
        outcome = step(states.get(key), fact)
        if outcome.state is not None:
            states[key] = outcome.state
            _track_clock(open_clocks, key, outcome.state)
        out.facts += 1
        view = _seen(out.participants.get(key), fact, signals=len(outcome.signals))
        out.participants[key] = view
        base = len(out.signals)
        out.signals.extend(
            (logged.seq, key, base + i, signal.model_dump_json())
            for i, signal in enumerate(outcome.signals)
        )
    return out


def _track_clock(open_clocks: set[Key], key: Key, state: _engine.State) -> None:
    if state.sae_clocks:
        open_clocks.add(key)
    else:
        open_clocks.discard(key)


def _signalled(view: ParticipantView) -> ParticipantView:
    return replace(view, signals=view.signals + 1)


def _seen(view: ParticipantView | None, fact: ArrivingFact, *, signals: int) -> ParticipantView:
    current = view or ParticipantView(
        fact.trial_id, fact.participant_id or "", fact.site_id, first_recorded_at=fact.recorded_at
    )
    status, arm = current.status, current.arm
    if isinstance(fact, ParticipantEnrolled):
        status, arm = "enrolled", str(fact.payload.arm)
    elif isinstance(fact, ParticipantWithdrawn):
        status = "withdrawn"
    elif isinstance(fact, DeathRecorded):
        status = "died"
    return replace(
        current,
        site_id=fact.site_id or current.site_id,
        arm=arm,
        status=status,
        facts=current.facts + 1,
        signals=current.signals + signals,
        last_recorded_at=fact.recorded_at,
    )


def _merge(parts: list[_Partial], *, as_of: datetime | None, config: TrialConfig) -> ReplayResult:
    # A participant's signals stay in one partition in fold order. A fact's signals all
    # belong to its participant; a tick's come out of `evaluate_tick` in participant-key
    # order. Sorting on (seq, participant key, position in its fold) therefore restores
    # the single-fold order across partitions, ticks included.
    tagged = sorted(
        ((seq, key, position, body) for part in parts for seq, key, position, body in part.signals),
        key=lambda item: (item[0], item[1], item[2]),
    )
    signals = tuple(
        ReplayedSignal(seq, SIGNAL_ADAPTER.validate_json(body)) for seq, _, _, body in tagged
    )
    participants = sorted(
        (view for part in parts for view in part.participants.values()),
        key=lambda v: (v.trial_id, v.participant_id),
    )
    seqs = [part.last_seq for part in parts if part.last_seq is not None]
    return ReplayResult(
        as_of=as_of,
        config_version=config.version,
        rules=_engine.rule_versions(config),
        facts=sum(part.facts for part in parts),
        last_seq=max(seqs) if seqs else None,
        participants=tuple(participants),
        signals=signals,
        # Every partition reads every tick: count them once.
        ticks=max((part.ticks for part in parts), default=0),
    )
