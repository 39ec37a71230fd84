"""Use-case of the rules service (app layer): load states, evaluate, commit one batch atomically."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from schemas import ClinicalFact, ClockTicked, SignalUpdated
from services.rules.core import engine, fold
from services.rules.core.config import TrialConfig
from services.rules.core.engine import Rules, Signal, StateKey
from services.rules.core.signals import derived_id
from services.rules.core.state import ParticipantState
from services.rules.ports import (
    Commit,
    ConfigActivation,
    ConfigIdentity,
    DeadLetter,
    EventLog,
    Folded,
    LaneTick,
    Rejected,
    StateStore,
)

T = TypeVar("T")


class _NullLog:
    def debug(self, event: str, **kw: object) -> None:
        """Drop the event."""

    def info(self, event: str, **kw: object) -> None:
        """Drop the event."""

    def warning(self, event: str, **kw: object) -> None:
        """Drop the event."""

    def error(self, event: str, **kw: object) -> None:
        """Drop the event."""


#: One input of a batch: a participant's fact, a tick for a whole trial, or a tick replayed
#: into one participant's order.
Item = ClinicalFact | ClockTicked | LaneTick


async def handle_batch(  # noqa: PLR0913 - the use-case's inputs, keyword-only
    facts: Sequence[Item],
    *,
    consumer: str,
    store: StateStore,
    rejected: Sequence[Rejected] = (),
    log: EventLog | None = None,
    config: Rules = None,
    identity: ConfigIdentity | None = None,
) -> list[Signal]:
    """Evaluate a delivered batch and commit its effects in one transaction.

    Each participant's items are folded in the order given (the consumer hands out each
    participant's facts in log order; participants do not wait for each other). Inputs
    already tracked for `consumer` (or repeated within the batch) are skipped, and a tick is
    applied to a participant only past the participant's committed position, so a
    redelivery is applied once. Returns the new signals, now in the outbox, so the relay
    can publish them.

    `config` is the trial configuration the rules apply (None: the RULES.md defaults; best
    compiled once by the caller, `RuleSet.of`) and
    `identity` the file it was read from. The first batch under a configuration other than
    the newest recorded one records it, in the same commit, from the position after the
    highest one folded so far; facts before that position that are folded later (another
    participant's backlog) are folded under the configuration live at their position, as
    an as-of replay folds them.

    Raises:
        AlreadyProcessedError: another writer committed part of the batch meanwhile.
        TransientError: storage failed; nothing was committed, the batch may be redelivered.

    """
    out = log or _NullLog()
    tracked_inputs = [f for f in facts if not isinstance(f, LaneTick)]
    done = await store.processed(
        consumer, [f.event_id for f in tracked_inputs] + [r.tracking_id for r in rejected]
    )
    fresh = _first_seen(
        [f for f in facts if isinstance(f, LaneTick) or f.event_id not in done], _item_id
    )
    new_rejects = _first_seen(
        [r for r in rejected if r.tracking_id not in done], lambda r: str(r.tracking_id)
    )
    skipped = len(tracked_inputs) - sum(1 for f in fresh if not isinstance(f, LaneTick))
    if skipped:
        out.info("facts_duplicate_skipped", consumer=consumer, count=skipped)
    if not fresh and not new_rejects:
        return []
    keys: set[StateKey] = set()
    for item in fresh:
        if isinstance(item, LaneTick):
            keys.add(item.key)
        elif isinstance(item, ClockTicked):
            # A trial's tick reaches every participant with an open SAE-02 clock: those
            # committed, and any this batch opens (their states are loaded for their facts).
            keys |= await store.open_clocks(item.trial_id)
        else:
            keys.add((item.trial_id, item.participant_id))
    states = await store.load(keys)
    positions = await store.positions(keys)
    activation = await _activation(fresh, identity, store)
    seqs = [seq for item in fresh if (seq := _seq(item)) is not None]
    timeline = await _Timeline.of(store, config, activation, seqs, out)
    result = _evaluate(fresh, states, positions, consumer=consumer, out=out, timeline=timeline)
    signals, dead = result.signals, [r.dead_letter for r in new_rejects] + result.dead
    signals.extend(r.signal for r in new_rejects if r.signal is not None)
    await store.commit(
        Commit(
            consumer=consumer,
            tracking=(
                *(f.event_id for f in fresh if not isinstance(f, LaneTick)),
                *(r.tracking_id for r in new_rejects),
            ),
            states=tuple(result.changed.values()),
            positions=tuple(sorted(result.positions.items())),
            folded=tuple(result.folded),
            signals=tuple(signals),
            dead_letters=tuple(dead),
            activation=activation,
        )
    )
    if activation is not None:
        out.info(
            "config_activated",
            config_version=activation.config.version,
            config_sha256=activation.config.sha256,
            from_seq=activation.from_seq,
        )
    _log_outcomes(out, signals, dead)
    out.info("batch_committed", consumer=consumer, facts=len(fresh), signals=len(signals))
    return signals


def _item_id(item: Item) -> str:
    if isinstance(item, LaneTick):
        return f"{item.tick.event_id}|{item.key[0]}|{item.key[1]}"
    return str(item.event_id)


def _seq(item: Item) -> int | None:
    return item.tick.seq if isinstance(item, LaneTick) else item.seq


async def _activation(
    fresh: Sequence[Item],
    identity: ConfigIdentity | None,
    store: StateStore,
) -> ConfigActivation | None:
    """The configuration switch this batch records: only the first batch under `identity`.

    The switch is placed just past the highest position folded under the previous
    configuration, so no fact at or after it was folded under the previous one. Before any
    position is recorded (a new store, or one written by strictly ordered versions) it is
    the smallest log seq of the batch. Facts without a log position (built by hand in unit
    tests, never delivered from the log) record nothing: a switch at no position could not
    tell a replay where to change; the next batch with positions records it.
    """
    seqs = [seq for item in fresh if (seq := _seq(item)) is not None]
    if identity is None or not seqs:
        return None
    active = await store.active_config()
    if active is not None and active.config.sha256 == identity.sha256:
        return None
    highest = await store.max_position()
    from_seq = min(seqs) if highest is None else highest + 1
    if active is not None:
        from_seq = max(from_seq, active.from_seq + 1)
    return ConfigActivation(from_seq=from_seq, config=identity)


@dataclass(frozen=True)
class _Timeline:
    """The configuration each input is folded under: the one live at its log position."""

    current: Rules
    out: EventLog
    from_seq: int | None = None
    previous: TrialConfig | None = None

    @classmethod
    async def of(
        cls,
        store: StateStore,
        config: Rules,
        activation: ConfigActivation | None,
        seqs: Sequence[int],
        out: EventLog,
    ) -> _Timeline:
        """The timeline for a batch with these positions (history read only when needed)."""
        active = activation or await store.active_config()
        if active is None or not seqs or min(seqs) >= active.from_seq:
            return cls(config, out)
        history = [r.activation for r in await store.config_history()]
        earlier = [a for a in history if a.from_seq < active.from_seq]
        previous = engine.parse_config(earlier[-1].config.toml) if earlier else None
        return cls(config, out, active.from_seq, previous)

    def at(self, seq: int | None) -> Rules:
        """The configuration live at log position `seq`."""
        if seq is None or self.from_seq is None or seq >= self.from_seq:
            return self.current
        if self.previous is None:
            # No earlier configuration is recorded (a log older than the history).
            self.out.warning("fact_before_config_activation", seq=seq, from_seq=self.from_seq)
            return self.current
        self.out.info("fact_folded_under_previous_config", seq=seq, from_seq=self.from_seq)
        return self.previous


@dataclass
class _Evaluated:
    changed: dict[StateKey, ParticipantState] = field(default_factory=dict)
    positions: dict[StateKey, int] = field(default_factory=dict)
    folded: list[Folded] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


def _evaluate(
    fresh: list[Item],
    states: dict[StateKey, ParticipantState],
    positions: dict[StateKey, int],
    *,
    consumer: str,
    out: EventLog,
    timeline: _Timeline,
) -> _Evaluated:
    """Fold each input, in the order given, through the one fold against its participant."""
    result = _Evaluated()
    for item in fresh:
        if isinstance(item, (LaneTick, ClockTicked)):
            tick = item.tick if isinstance(item, LaneTick) else item
            keys = [item.key] if isinstance(item, LaneTick) else list(states)
            seq = tick.seq
            due = {
                key: states[key]
                for key in keys
                if key in states and (seq is None or positions.get(key, 0) < seq)
            }
            applied = fold.apply(due, tick, timeline.at(seq))
            changed = dict(applied.changed)
            states.update(changed)
            result.changed.update(changed)
            result.signals.extend(applied.signals)
            if changed:
                body = tick.model_dump_json().encode()
                result.folded.extend(Folded(key, seq, True, body) for key in sorted(changed))
            if seq is not None:
                # Also where nothing changed: the tick must not reach the key a second time
                # after the key's later facts.
                for key, state in due.items():
                    if state.trial_id == tick.trial_id:
                        positions[key] = result.positions[key] = seq
            continue
        fact = item
        key = fold.key_of(fact)
        applied = fold.apply(states, fact, timeline.at(fact.seq))
        if key in applied.changed:
            states[key] = result.changed[key] = applied.changed[key]
            result.folded.append(Folded(key, fact.seq, False, fact.model_dump_json().encode()))
        if fact.seq is not None and fact.seq > positions.get(key, 0):
            positions[key] = result.positions[key] = fact.seq
        result.signals.extend(applied.signals)
        if applied.failed:
            result.dead.append(_dead_letter(fact, consumer=consumer, failed=applied.failed))
        out.debug("fact_processed", **_ids(fact))
    return result


def _first_seen(items: list[T], key: Callable[[T], str]) -> list[T]:
    seen: set[str] = set()
    kept: list[T] = []
    for item in items:
        if (k := key(item)) not in seen:
            seen.add(k)
            kept.append(item)
    return kept


def _ids(fact: ClinicalFact) -> dict[str, str]:
    return {
        "event_id": str(fact.event_id),
        "event_type": str(getattr(fact, "event_type", "")),
        "trial_id": fact.trial_id,
        "participant_id": fact.participant_id,
    }


def _dead_letter(fact: ClinicalFact, *, consumer: str, failed: tuple[str, ...]) -> DeadLetter:
    return DeadLetter(
        dead_letter_id=derived_id("dead-letter", consumer, str(fact.event_id)),
        consumer=consumer,
        stage="evaluate",
        error=",".join(failed),
        event_id=fact.event_id,
        trial_id=fact.trial_id,
        participant_id=fact.participant_id,
        body=fact.model_dump_json().encode(),
    )


def _log_outcomes(out: EventLog, signals: list[Signal], dead: list[DeadLetter]) -> None:
    # `correlation_id` is the id one alert is traced by in every service (README "Tracing
    # one alert"): the event id of the fact behind the signal. The core sets the signal's
    # correlation_id to it (for an overdue-SAE reminder, to the SAE the tick concerns).
    for signal in signals:
        out.info(
            "signal_retracted" if isinstance(signal, SignalUpdated) else "signal_raised",
            signal_id=str(signal.event_id),
            rule_id=signal.payload.rule_id,
            urgency=signal.payload.urgency.value,
            trial_id=signal.trial_id,
            participant_id=signal.participant_id,
            causation_id=str(signal.causation_id),
            correlation_id=str(signal.correlation_id or signal.causation_id),
        )
    for letter in dead:
        out.error(
            "fact_dead_lettered",
            dead_letter_id=str(letter.dead_letter_id),
            correlation_id=None if letter.event_id is None else str(letter.event_id),
            stage=letter.stage,
            error=letter.error,
            event_id=None if letter.event_id is None else str(letter.event_id),
            stream_seq=letter.stream_seq,
        )
