"""The rules' one fold: facts and clock ticks, in log order, into states and signals (pure).

Every fold of the product goes through `apply`: the rules service (a batch at a time, each
participant's inputs in log order), `fold` (the in-process replay tests and benchmarks use)
and the audit's replay (`services/audit/core/fold.py`, through the one module the rules
publish to it, `services/rules/published/model.py`). What a fact does to its participant (rules
that raise are isolated and reported as SYS-01), which participants a tick reaches (its
trial's, with an open SAE-02 or SUSAR-01 clock, in key order) and what counts as a change
(identity: a state the rules did not replace) are decided here once. The drivers differ
only in what they keep around the fold: the service its per-participant positions and
journal, the audit its checkpoints and participant views.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from schemas import ClinicalFact, ClockTicked
from services.rules.core import engine
from services.rules.core.config import TrialConfig
from services.rules.core.engine import Rules, RuleSet, Signal
from services.rules.core.state import ParticipantState

Key = tuple[str, str]
Input = ClinicalFact | ClockTicked


@dataclass(frozen=True, slots=True)
class Applied:
    """What one input did: the states it replaced, its signals, the rule steps that raised."""

    changed: Mapping[Key, ParticipantState]
    signals: tuple[Signal, ...]
    failed: tuple[str, ...] = ()


def key_of(fact: ClinicalFact) -> Key:
    """The participant a fact belongs to."""
    return (fact.trial_id, fact.participant_id)


def reached_by(state: ParticipantState, tick: ClockTicked) -> bool:
    """Tell whether a tick can change this state: its trial, with a reporting clock open."""
    return state.trial_id == tick.trial_id and state.has_open_clock


def apply(
    states: Mapping[Key, ParticipantState],
    item: Input,
    config: Rules = None,
    *,
    dispatch: bool = True,
) -> Applied:
    """Fold one input into `states` (which are not changed; the new states are returned).

    A fact needs its participant's state in `states` (absent: a participant not seen yet); a
    tick needs at least the states it reaches (`reached_by`): any superset gives the same.
    `config` is best a `RuleSet` compiled once by the caller (a bare configuration is
    compiled through the engine's cache).
    """
    if isinstance(item, ClockTicked):
        due = {k: s for k, s in states.items() if reached_by(s, item)}
        changed, ticked = engine.evaluate_tick(due, item, config)
        return Applied(changed, ticked)
    key = key_of(item)
    before = states.get(key)
    outcome = engine.evaluate_guarded(before, item, config, dispatch=dispatch)
    # Identity, not equality: comparing two states field by field costs their history.
    replaced = outcome.state is not None and outcome.state is not before
    changed = {key: outcome.state} if replaced and outcome.state is not None else {}
    return Applied(changed, outcome.signals, outcome.failed)


class ConfigAt(Protocol):
    """The trial configuration live at each log position (a configuration timeline)."""

    def at(self, seq: int) -> TrialConfig | None:
        """The configuration live at log position `seq`."""
        ...


@dataclass
class Folded:
    """A fold's result: every participant's state, and the signals in the order raised."""

    states: dict[Key, ParticipantState] = field(default_factory=dict)
    signals: list[Signal] = field(default_factory=list)
    #: Participants with an open reporting clock: the only states a tick needs.
    open_clocks: set[Key] = field(default_factory=set)

    def take(self, applied: Applied) -> None:
        """Keep what one input did."""
        for key, state in applied.changed.items():
            self.states[key] = state
            if state.has_open_clock:
                self.open_clocks.add(key)
            else:
                self.open_clocks.discard(key)
        self.signals.extend(applied.signals)


def fold(
    items: Iterable[Input],
    configs: Rules | ConfigAt = None,
    *,
    dispatch: bool = True,
    start: Folded | None = None,
) -> Folded:
    """Fold inputs in log order, each under the configuration live at its position.

    `dispatch=False` runs every rule on every fact (the reference the dispatch must match).
    """
    out = start or Folded()
    if isinstance(configs, TrialConfig):
        configs = RuleSet.of(configs)  # compiled once for the whole fold
    for item in items:
        config = _config_at(configs, item)
        if isinstance(item, ClockTicked):
            view = {k: out.states[k] for k in out.open_clocks}
            out.take(apply(view, item, config, dispatch=dispatch))
        else:
            key = key_of(item)
            view = {key: out.states[key]} if key in out.states else {}
            out.take(apply(view, item, config, dispatch=dispatch))
    return out


def _config_at(configs: Rules | ConfigAt, item: Input) -> Rules:
    if configs is None or isinstance(configs, (TrialConfig, RuleSet)):
        return configs
    return configs.at(item.seq or 0)


def replay(
    facts: Iterable[Input],
    config: Rules = None,
    *,
    dispatch: bool = True,
) -> tuple[dict[Key, ParticipantState], tuple[Signal, ...]]:
    """Fold a history exactly as live processing does; return final states and all signals.

    `dispatch=False` runs every rule on every fact (the reference the dispatch must match).
    """
    out = fold(facts, config, dispatch=dispatch)
    return out.states, tuple(out.signals)
