"""The live rules' per-fact and per-tick steps, as a replay runs them (pure).

The replay must fold each fact exactly as the live rules service does, so the steps here
are the rules' own fold (`services.rules.published.apply`) with a configuration bound, not
a copy of it. The rule catalogue's ids and versions, and a configuration running another
version of one rule (a backtest's candidate), are derived from the same published module,
so the rules can grow side-by-side rule versions without the audit following file by file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import services.rules.published.model as rules
from schemas import ClinicalFact, ClockTicked, SignalRaised, SignalUpdated
from services.audit.core.errors import ConfigError, RuleVersionError
from services.rules.published.model import ParticipantState, TrialConfig

#: A participant's projection, as the engine folds it.
State = ParticipantState
#: A state's stored form, exactly as the rules service writes and reads it.
encode_state = rules.encode_state
decode_state = rules.decode_state
Step = Callable[[ParticipantState | None, ClinicalFact], "Outcome"]
#: A participant's key: (trial id, participant id).
Key = tuple[str, str]
Tick = Callable[[Mapping[Key, ParticipantState], ClockTicked], "TickOutcome"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one fact did: the participant's new state (None: unchanged) and its signals."""

    state: ParticipantState | None
    signals: tuple[SignalRaised | SignalUpdated, ...]


def config_from_text(text: str, *, where: str) -> TrialConfig:
    """Validate a trial configuration's TOML text (`where` names it in errors).

    Raises:
        ConfigError: not TOML, not a valid configuration, or one the engine cannot run.

    """
    try:
        return rules.parse_config(text)  # an unknown rule or version fails here, not mid-replay
    except ValueError as exc:  # tomllib.TOMLDecodeError is one
        raise ConfigError(f"{where}: not a valid trial configuration: {exc}") from exc


def rule_versions(config: TrialConfig) -> tuple[tuple[str, int], ...]:
    """(rule id, version) of every rule `config` runs, in evaluation order."""
    return tuple((rule.rule_id, rule.rule_version) for rule in rules.rules_for(config))


@dataclass(frozen=True, slots=True)
class TickOutcome:
    """What one tick did: the states it changed and its signals (participants in key order)."""

    changed: dict[Key, ParticipantState]
    signals: tuple[SignalRaised | SignalUpdated, ...]


def stepper(config: TrialConfig) -> Step:
    """The live per-fact step (`fold.apply`, as the rules service folds) with `config` bound.

    The outcome's state is None when the fact left the participant's state as it was.
    """

    def step(state: ParticipantState | None, fact: ClinicalFact) -> Outcome:
        key = rules.key_of(fact)
        applied = rules.apply({} if state is None else {key: state}, fact, config)
        return Outcome(applied.changed.get(key), applied.signals)

    return step


def ticker(config: TrialConfig) -> Tick:
    """The live per-tick step (`fold.apply`) with `config` bound.

    The live rules service hands the fold the states of the tick's participants with an open
    SAE-02 or SUSAR-01 clock (`StateStore.open_clocks`) plus those its batch loaded; the fold
    keeps only those a tick reaches (`fold.reached_by`), so any superset gives the same.
    """

    def tick(states: Mapping[Key, ParticipantState], fact: ClockTicked) -> TickOutcome:
        applied = rules.apply(states, fact, config)
        return TickOutcome(dict(applied.changed), applied.signals)

    return tick


def check_version(config: TrialConfig, rule_id: str, version: int) -> int:
    """The live version of `rule_id` under `config`, after checking `version` can run.

    Every version the engine keeps (`rules.VERSIONS`; version 1 of a rule that has only one)
    is runnable, so a candidate version runs beside the live one (DESIGN.md principle 2).

    Raises:
        RuleVersionError: the rule is not in the catalogue, or the engine has no `version`.

    """
    live = dict(rule_versions(config))
    if rule_id not in live:
        known = ", ".join(sorted(live))
        raise RuleVersionError(f"no rule {rule_id} in the catalogue; it runs: {known}")
    runnable = sorted(rules.VERSIONS.get(rule_id, {1: None}))
    if version not in runnable:
        listed = ", ".join(f"v{n}" for n in runnable)
        raise RuleVersionError(f"{rule_id} has no version {version}; the engine keeps {listed}")
    return live[rule_id]


def with_version(config: TrialConfig, rule_id: str, version: int) -> TrialConfig:
    """`config` running `version` of `rule_id` (the other rules' versions unchanged)."""
    if config.rule_version(rule_id) == version:
        return config
    chosen = {**dict(config.rule_versions), rule_id: version}
    label = f"{config.version}+{rule_id}.v{version}"
    return replace(config, version=label, rule_versions=tuple(sorted(chosen.items())))
