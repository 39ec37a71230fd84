"""Use-case of the rules service (app layer): load states, evaluate, commit one batch atomically."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from schemas import ClinicalFact, ClockTicked, SignalUpdated
from services.rules.core import engine
from services.rules.core.config import TrialConfig
from services.rules.core.engine import Signal, StateKey
from services.rules.core.signals import derived_id
from services.rules.core.state import ParticipantState
from services.rules.ports import (
    Commit,
    ConfigActivation,
    ConfigIdentity,
    DeadLetter,
    EventLog,
    Rejected,
    StateStore,
)

T = TypeVar("T")


class _NullLog:
    def debug(self, event: str, **kw: Any) -> None:  # noqa: ANN401 - matches EventLog
        """Drop the event."""

    def info(self, event: str, **kw: Any) -> None:  # noqa: ANN401 - matches EventLog
        """Drop the event."""

    def warning(self, event: str, **kw: Any) -> None:  # noqa: ANN401 - matches EventLog
        """Drop the event."""

    def error(self, event: str, **kw: Any) -> None:  # noqa: ANN401 - matches EventLog
        """Drop the event."""


async def handle_batch(  # noqa: PLR0913 - the use-case's inputs, keyword-only
    facts: Sequence[ClinicalFact | ClockTicked],
    *,
    consumer: str,
    store: StateStore,
    rejected: Sequence[Rejected] = (),
    log: EventLog | None = None,
    config: TrialConfig | None = None,
    identity: ConfigIdentity | None = None,
) -> list[Signal]:
    """Evaluate a delivered batch in order and commit its effects in one transaction.

    Inputs already tracked for `consumer` (or repeated within the batch) are skipped. Returns
    the new signals, now in the outbox, so the relay can publish them. `config` is the
    trial configuration the rules apply (None: the RULES.md defaults) and `identity` the
    file it was read from: the first batch under a configuration other than the newest
    recorded one records it, from its smallest log seq on, in the same commit (issue 5).

    Raises:
        AlreadyProcessedError: another writer committed part of the batch meanwhile.
        TransientError: storage failed; nothing was committed, the batch may be redelivered.

    """
    out = log or _NullLog()
    done = await store.processed(
        consumer, [f.event_id for f in facts] + [r.tracking_id for r in rejected]
    )
    fresh = _first_seen([f for f in facts if f.event_id not in done], lambda f: str(f.event_id))
    new_rejects = _first_seen(
        [r for r in rejected if r.tracking_id not in done], lambda r: str(r.tracking_id)
    )
    if len(fresh) < len(facts):
        out.info("facts_duplicate_skipped", consumer=consumer, count=len(facts) - len(fresh))
    if not fresh and not new_rejects:
        return []
    keys: set[StateKey] = set()
    for fact in fresh:
        if isinstance(fact, ClockTicked):
            # A tick reaches every participant with an open SAE-02 clock: those committed,
            # and any this batch opens (their states are loaded for their own facts).
            keys |= await store.open_clocks(fact.trial_id)
        else:
            keys.add((fact.trial_id, fact.participant_id))
    states = await store.load(keys)
    result = _evaluate(fresh, states, consumer=consumer, out=out, config=config)
    signals, dead = result.signals, [r.dead_letter for r in new_rejects] + result.dead
    signals.extend(r.signal for r in new_rejects if r.signal is not None)
    activation = await _activation(fresh, identity, store, out)
    await store.commit(
        Commit(
            consumer=consumer,
            tracking=(*(f.event_id for f in fresh), *(r.tracking_id for r in new_rejects)),
            states=tuple(result.changed.values()),
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


async def _activation(
    fresh: Sequence[ClinicalFact | ClockTicked],
    identity: ConfigIdentity | None,
    store: StateStore,
    out: EventLog,
) -> ConfigActivation | None:
    """The configuration switch this batch records: only the first batch under `identity`.

    The position is the smallest log seq of the batch's fresh facts; facts are delivered in
    log order, so every fact before it was committed under the previous configuration. Facts
    without a log position (built by hand in unit tests, never delivered from the log) record
    nothing: a switch at no position could not tell a replay where to change; the next batch
    with positions records it.
    """
    seqs = [fact.seq for fact in fresh if fact.seq is not None]
    if identity is None or not seqs:
        return None
    active = await store.active_config()
    if active is None or active.config.sha256 != identity.sha256:
        return ConfigActivation(from_seq=min(seqs), config=identity)
    if min(seqs) < active.from_seq:
        # Redelivered after a restart (fetched, never acked, by the previous process): it is
        # evaluated under this configuration although the log places it before the switch.
        out.warning("fact_before_config_activation", seq=min(seqs), from_seq=active.from_seq)
    return None


@dataclass
class _Evaluated:
    changed: dict[StateKey, ParticipantState] = field(default_factory=dict)
    signals: list[Signal] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


def _evaluate(
    fresh: list[ClinicalFact | ClockTicked],
    states: dict[StateKey, ParticipantState],
    *,
    consumer: str,
    out: EventLog,
    config: TrialConfig | None,
) -> _Evaluated:
    """Fold each fact, in delivery order, through the engine against its participant's state."""
    result = _Evaluated()
    for fact in fresh:
        if isinstance(fact, ClockTicked):
            changed, ticked = engine.evaluate_tick(states, fact, config)
            states.update(changed)
            result.changed.update(changed)
            result.signals.extend(ticked)
            continue
        key = (fact.trial_id, fact.participant_id)
        outcome = engine.evaluate_guarded(states.get(key), fact, config)
        if outcome.state is not None and outcome.state != states.get(key):
            states[key] = result.changed[key] = outcome.state
        result.signals.extend(outcome.signals)
        if outcome.failed:
            result.dead.append(_dead_letter(fact, consumer=consumer, failed=outcome.failed))
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
    for signal in signals:
        out.info(
            "signal_retracted" if isinstance(signal, SignalUpdated) else "signal_raised",
            signal_id=str(signal.event_id),
            rule_id=signal.payload.rule_id,
            urgency=signal.payload.urgency.value,
            trial_id=signal.trial_id,
            participant_id=signal.participant_id,
            causation_id=str(signal.causation_id),
        )
    for letter in dead:
        out.error(
            "fact_dead_lettered",
            dead_letter_id=str(letter.dead_letter_id),
            stage=letter.stage,
            error=letter.error,
            event_id=None if letter.event_id is None else str(letter.event_id),
            stream_seq=letter.stream_seq,
        )
