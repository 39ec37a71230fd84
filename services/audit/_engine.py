"""The audit tools' one door into the rules engine (shell over the pure rules core).

Everything the audit package needs of the rules is here: the trial configuration, the
catalogue's rule ids and versions, `evaluate_guarded`, the very step the live rules
service runs per fact, and `evaluate_tick`, the step it runs per clock tick. Keeping the
coupling in one small module lets the rules service grow (side-by-side rule versions,
issue 3) without the audit tools following it file by file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Final

from schemas import ClinicalFact, ClockTicked, SignalRaised, SignalUpdated
from services.audit.errors import AuditError
from services.rules.core import engine, fold
from services.rules.core.config import TrialConfig
from services.rules.core.state import ParticipantState

#: The trial file the rules service reads when SAFETYMON_TRIAL_CONFIG is unset.
PACKAGED_CONFIG: Final = "NCT01724398.v1.toml"
#: A participant's projection, as the engine folds it.
State = ParticipantState
Step = Callable[[ParticipantState | None, ClinicalFact], "Outcome"]
#: A participant's key: (trial id, participant id).
Key = tuple[str, str]
Tick = Callable[[Mapping[Key, ParticipantState], ClockTicked], "TickOutcome"]


class ConfigError(AuditError):
    """The trial configuration for a replay cannot be read."""


class RuleVersionError(AuditError):
    """The rules engine cannot run the rule version asked for."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one fact did: the participant's new state (None: unchanged) and its signals."""

    state: ParticipantState | None
    signals: tuple[SignalRaised | SignalUpdated, ...]


def config_path(path: Path | None = None) -> Path:
    """The trial file a replay uses: `path`, else the live service's (env, then packaged)."""
    if path is not None:
        return path
    configured = os.environ.get("SAFETYMON_TRIAL_CONFIG")
    if configured:
        return Path(configured)
    return Path(str(resources.files("services.rules").joinpath("trial_config", PACKAGED_CONFIG)))


def load_config(path: Path | None = None) -> TrialConfig:
    """Read and validate a versioned trial configuration file (TOML).

    Raises:
        ConfigError: the file is missing, not TOML, or not a valid configuration.

    """
    source = config_path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the trial configuration: {exc}") from exc
    return config_from_text(text, where=str(source))


def config_from_text(text: str, *, where: str) -> TrialConfig:
    """Validate a trial configuration's TOML text (`where` names it in errors).

    Raises:
        ConfigError: not TOML, not a valid configuration, or one the engine cannot run.

    """
    try:
        return engine.parse_config(text)  # an unknown rule or version fails here, not mid-replay
    except ValueError as exc:  # tomllib.TOMLDecodeError is one
        raise ConfigError(f"{where}: not a valid trial configuration: {exc}") from exc


def rule_versions(config: TrialConfig) -> tuple[tuple[str, int], ...]:
    """(rule id, version) of every rule the catalogue runs under `config`, in order."""
    return tuple((rule.rule_id, rule.rule_version) for rule in engine.catalogue(config))


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
        key = fold.key_of(fact)
        applied = fold.apply({} if state is None else {key: state}, fact, config)
        return Outcome(applied.changed.get(key), applied.signals)

    return step


def ticker(config: TrialConfig) -> Tick:
    """The live per-tick step (`fold.apply`) with `config` bound.

    The live rules service hands the fold the states of the tick's participants with an open
    SAE-02 or SUSAR-01 clock (`StateStore.open_clocks`) plus those its batch loaded; the fold
    keeps only those a tick reaches (`fold.reached_by`), so any superset gives the same.
    """

    def tick(states: Mapping[Key, ParticipantState], fact: ClockTicked) -> TickOutcome:
        applied = fold.apply(states, fact, config)
        return TickOutcome(dict(applied.changed), applied.signals)

    return tick


def check_version(config: TrialConfig, rule_id: str, version: int) -> int:
    """The live version of `rule_id` under `config`, after checking `version` can run.

    Every version the engine keeps (`engine.VERSIONS`; version 1 of a rule that has only one)
    is runnable, so a candidate version runs beside the live one (DESIGN.md principle 2).

    Raises:
        RuleVersionError: the rule is not in the catalogue, or the engine has no `version`.

    """
    live = dict(rule_versions(config))
    if rule_id not in live:
        known = ", ".join(sorted(live))
        raise RuleVersionError(f"no rule {rule_id} in the catalogue; it runs: {known}")
    runnable = sorted(engine.VERSIONS.get(rule_id, {1: None}))
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
