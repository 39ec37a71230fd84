"""Fold facts into participant state and through the trial's rules (core layer; pure).

The per-fact and per-tick steps (`evaluate_guarded`, `evaluate_tick`); `fold` folds a log
through them for live processing, replay and audit alike: the same facts in the same order,
with the same trial configuration, give the same states and the same signal bytes.

A trial configuration is compiled once into a `RuleSet` (its rules in evaluation order and
their per-fact plans); a caller on the hot path builds it with `RuleSet.of` and passes it to
every step. The steps also take a bare `TrialConfig` (or None for the RULES.md defaults).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from types import ModuleType
from typing import TypeVar

from schemas import ClinicalFact, ClockTicked, FactCorrected, SignalRaised, SignalUpdated
from services.rules.core import retraction
from services.rules.core._dispatch import Dispatch, Plan, Rule, Step
from services.rules.core._history import prune, retention
from services.rules.core.config import DEFAULT_CONFIG, TrialConfig
from services.rules.core.projection import (
    correction_applies,
    current_id,
    evolve,
    initial_state,
)
from services.rules.core.rules import (
    aki_01,
    aki_02,
    aki_03,
    aki_04,
    aki_05,
    he_01,
    he_02,
    inf_01,
    inf_02,
    inf_03,
    inf_04,
    inf_05,
    inf_07,
    inf_08,
    ir_msc_01,
    ir_msc_02,
    ir_msc_03,
    lab_g3,
    lab_g4,
    lab_shift,
    lfp_01,
    lfp_02,
    lfp_03,
    lfp_04,
    pe_01,
    pe_02,
    pe_03,
    pe_04,
    pe_05,
    sae_01,
    sae_02,
    sae_03,
    sae_04,
    sae_05,
    stop_03,
    susar_01,
    vb_01,
    vb_02,
    vb_03,
    vb_04,
    vb_04_v2,
    vb_05,
    vb_06,
)
from services.rules.core.rules._alerting import late_values
from services.rules.core.rules._triggers import Triggers
from services.rules.core.signals import system_signal
from services.rules.core.state import ParticipantState

__all__ = [
    "DEFAULT_RULES",
    "RULES",
    "Evaluation",
    "Rule",
    "RuleSet",
    "Signal",
    "Step",
    "evaluate",
    "evaluate_guarded",
    "evaluate_tick",
    "evolve",
    "initial_state",
    "rules_for",
]

StateKey = tuple[str, str]
#: What the engine emits: signals raised, and retractions of earlier ones.
Signal = SignalRaised | SignalUpdated
S = TypeVar("S", SignalRaised, SignalUpdated, Signal)


#: Rules that read no configuration (SAE family) ...
_PLAIN: tuple[ModuleType, ...] = (sae_01, sae_03, sae_04)
#: ... then SAE-02's clock keeping and the clinical families, in a fixed order. HE runs
#: after infection and bleeding so their findings of the same fact are there for its
#: precipitant notes (HE-05); then liver
#: progression, AKI, CTCAE lab grades and the STOP-03 sentinel rule; SAE-05 runs last,
#: after every signal of the fact has been tracked (`sae_05.track`), so an SAE-01
#: on this fact counts.
_CONFIGURED: tuple[ModuleType, ...] = (
    sae_02,
    susar_01,
    vb_01,
    vb_05,
    vb_02,
    vb_03,
    vb_04,
    vb_06,
    inf_01,
    inf_02,
    inf_03,
    inf_04,
    inf_05,
    inf_07,
    inf_08,
    ir_msc_01,
    ir_msc_02,
    ir_msc_03,
    pe_01,
    pe_02,
    pe_03,
    pe_04,
    pe_05,
    he_01,
    he_02,
    lfp_01,
    lfp_02,
    lfp_03,
    lfp_04,
    aki_01,
    aki_02,
    aki_03,
    aki_04,
    aki_05,
    lab_g3,
    lab_g4,
    lab_shift,
    stop_03,
    sae_05,
)


#: Every runnable version of a rule that has more than one; `_CONFIGURED` names version 1.
#: Old versions stay here (never deleted), so a replay under an old trial configuration
#: fires exactly what it fired then (DESIGN.md principle 2).
VERSIONS: dict[str, dict[int, ModuleType]] = {
    vb_04.RULE_ID: {1: vb_04, 2: vb_04_v2},
}


def _live(module: ModuleType, config: TrialConfig) -> ModuleType:
    """The version of this rule module that `config` chooses."""
    wanted = config.rule_version(module.RULE_ID)
    chosen: ModuleType | None = VERSIONS.get(module.RULE_ID, {1: module}).get(wanted)
    if chosen is None:
        raise ValueError(f"{config.version}: {module.RULE_ID} has no version {wanted}")
    return chosen


def _triggers(module: ModuleType) -> Triggers | None:
    """The module's declared triggers; a rule module that declares none runs on every fact."""
    declared: Triggers | None = getattr(module, "TRIGGERS", None)
    return declared


@lru_cache(maxsize=8)
def rules_for(config: TrialConfig) -> tuple[Rule, ...]:
    """The rules `config` runs, in evaluation order, with `config` bound into every rule.

    Raises:
        ValueError: `config.rule_versions` names an unknown rule or version.

    """
    known = {m.RULE_ID for m in (*_PLAIN, *_CONFIGURED)}
    unknown = sorted({rule_id for rule_id, _ in config.rule_versions} - known)
    if unknown:
        raise ValueError(f"{config.version}: rule_versions names unknown rules: {unknown}")
    plain = [Rule(m.RULE_ID, m.RULE_VERSION, m.evaluate, _triggers(m)) for m in _PLAIN]
    configured = [
        Rule(m.RULE_ID, m.RULE_VERSION, partial(m.evaluate, config=config), _triggers(m))
        for m in (_live(module, config) for module in _CONFIGURED)
    ]
    return (*plain, *configured)


def parse_config(text: str) -> TrialConfig:
    """A trial configuration from its TOML text, checked to be one the engine can run.

    Pure (the text is given): the rules service and the audit replay read configuration
    files through it, so both accept and refuse the same files.

    Raises:
        tomllib.TOMLDecodeError: not TOML (a ValueError).
        ValueError: not a valid configuration, or an unknown rule or version.

    """
    config = TrialConfig.from_mapping(tomllib.loads(text))
    rules_for(config)
    return config


@dataclass(frozen=True, slots=True, eq=False)
class RuleSet:
    """A trial configuration compiled for the fold: its rules and their per-fact plans.

    Build it once per configuration (`RuleSet.of`) and hand it to every step: the plans
    (`Dispatch`) are made on first use and kept with the rules they were made from.
    """

    config: TrialConfig
    #: The rules in evaluation order (`rules_for(config)`, or any rules a test runs).
    rules: tuple[Rule, ...]
    dispatch: Dispatch = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dispatch", Dispatch(self.rules))  # frozen: set once here

    @classmethod
    def of(cls, config: TrialConfig) -> RuleSet:
        """Compile `config`.

        Raises:
            ValueError: `config.rule_versions` names an unknown rule or version.

        """
        return cls(config, rules_for(config))

    def plan(self, fact: ClinicalFact, *, dispatch: bool = True) -> Plan:
        """The rules to run on `fact`; `dispatch=False`: every rule (the reference)."""
        return self.dispatch.plan(fact) if dispatch else self.dispatch.every


#: The RULES.md defaults, compiled; to add a rule, write core/rules/<name>.py and list it
#: above.
DEFAULT_RULES: RuleSet = RuleSet.of(DEFAULT_CONFIG)
RULES: tuple[Rule, ...] = DEFAULT_RULES.rules

#: What the steps accept as the rules to run: a compiled set, a configuration, or None
#: (the defaults).
Rules = RuleSet | TrialConfig | None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What evaluating one fact produced; `failed` names the steps that raised (a bug)."""

    state: ParticipantState | None
    signals: tuple[Signal, ...]
    failed: tuple[str, ...] = ()


def _compiled(rules: Rules) -> RuleSet:
    """The rule set to run: as given, the defaults for None, or `config` compiled."""
    if rules is None or rules is DEFAULT_CONFIG:
        return DEFAULT_RULES
    if isinstance(rules, RuleSet):
        return rules
    return _compile(rules)


@lru_cache(maxsize=16)
def _compile(config: TrialConfig) -> RuleSet:
    """`RuleSet.of`, by configuration value (its hash is three fields; see `TrialConfig`).

    For callers that pass a bare configuration; the defaults never enter (`DEFAULT_RULES`),
    so a trial file equal in id and version to them does not share their hash bucket.
    """
    return RuleSet.of(config)


def _project(
    state: ParticipantState | None, fact: ClinicalFact, config: TrialConfig
) -> ParticipantState:
    horizon, default = retention(config)
    pruned = prune(evolve(state, fact), horizon, default=default)
    return retraction.forget_old(pruned, config)


def _fold(
    planned: Plan, state: ParticipantState, fact: ClinicalFact, *, guard: bool
) -> tuple[ParticipantState, list[SignalRaised], list[str]]:
    """Fold the state through the planned rules; with `guard`, a rule that raises is skipped.

    A rule planned with a state test runs only when the test holds for the state the rules
    before it left. Every raised signal is remembered (`retraction.remember`) so a
    correction can retract it.
    """
    current = state
    signals: list[SignalRaised] = []
    failures: list[str] = []
    for rule, active in planned:
        if active is not None and not active(current):
            continue
        before = current
        try:
            current, raised = rule.evaluate(current, fact)
        except Exception as exc:  # a defect in this rule: isolate it (see evaluate_guarded)
            if not guard:
                raise
            failures.append(f"{rule.rule_id}:{type(exc).__name__}")
            current = before
            continue
        if raised:
            current = retraction.remember(before, sae_05.track(current, raised), raised)
            signals.extend(raised)
    return current, signals, failures


def _retractions(
    prior: ParticipantState | None,
    current: ParticipantState,
    fact: ClinicalFact,
    *,
    planned: Plan,
    config: TrialConfig,
) -> tuple[ParticipantState, tuple[SignalUpdated, ...]]:
    """Retract what a correction undoes, before the rules see the corrected values."""
    if not isinstance(fact, FactCorrected) or prior is None:
        return current, ()
    if not correction_applies(prior, fact):
        return current, ()

    def run(state: ParticipantState, trigger: ClinicalFact) -> Step:
        after, raised, _ = _fold(planned, state, trigger, guard=True)
        return after, tuple(raised)

    original = fact.payload.supersedes_event_id
    targets = frozenset({original, current_id(prior, original)})
    return retraction.retract(
        current, fact, run=run, targets=targets, late=late_values(fact, config)
    )


def evaluate(
    state: ParticipantState | None,
    fact: ClinicalFact,
    config: Rules = None,
    *,
    dispatch: bool = True,
) -> tuple[ParticipantState, tuple[Signal, ...]]:
    """Evolve the state, retract what a correction undid, then fold through the rules.

    `dispatch=False` runs every rule on every fact (the reference the dispatch must match).
    """
    rules = _compiled(config)
    cfg = rules.config
    planned = rules.plan(fact, dispatch=dispatch)
    current = _project(state, fact, cfg)
    current, retracted = _retractions(state, current, fact, planned=planned, config=cfg)
    current, signals, _ = _fold(planned, current, fact, guard=False)
    return current, _stamped([*retracted, *signals], cfg, fact)


def evaluate_guarded(
    state: ParticipantState | None,
    fact: ClinicalFact,
    config: Rules = None,
    *,
    dispatch: bool = True,
) -> Evaluation:
    """Evaluate like `evaluate`, but isolate a rule that raises (a defect) from the others.

    A failing rule's state change is dropped, the other rules still run, and a SYS-01 signal
    says which step failed, so a bug in one rule never silences an SAE from another.
    `dispatch=False` runs every rule on every fact (the reference).
    """
    rules = _compiled(config)
    cfg = rules.config
    planned = rules.plan(fact, dispatch=dispatch)
    try:
        current = _project(state, fact, cfg)
        current, retracted = _retractions(state, current, fact, planned=planned, config=cfg)
    except Exception as exc:  # a defect in the projection: nothing else can run on this fact
        failed: tuple[str, ...] = (f"evolve:{type(exc).__name__}",)
        arm = None if state is None else state.arm
        signal = system_signal(fact, stage="evaluate", failed=failed, arm=arm)
        return Evaluation(state, _stamped([signal], cfg, fact), failed)
    current, raised, failures = _fold(planned, current, fact, guard=True)
    signals: list[Signal] = [*retracted, *raised]
    if failures:
        failed = tuple(failures)
        signals.append(system_signal(fact, stage="evaluate", failed=failed, arm=current.arm))
    return Evaluation(current, _stamped(signals, cfg, fact), tuple(failures))


def evaluate_tick(
    states: Mapping[StateKey, ParticipantState],
    tick: ClockTicked,
    config: Rules = None,
) -> tuple[dict[StateKey, ParticipantState], tuple[Signal, ...]]:
    """Let time pass for every participant of the tick's trial with an open SAE-02 clock.

    Participants are visited in key order, so the signals of one tick come out the same in
    live processing and in replay. Returns the states that changed and the signals.
    """
    cfg = _compiled(config).config
    changed: dict[StateKey, ParticipantState] = {}
    signals: list[SignalRaised] = []
    for key in sorted(states):
        state = states[key]
        if state.trial_id != tick.trial_id or not state.has_open_clock:
            continue
        after, raised = sae_02.on_tick(state, tick, config=cfg)
        after, susar_raised = susar_01.on_tick(after, tick, config=cfg)
        raised = (*raised, *susar_raised)
        if after is not state:  # identity: equality would compare the whole history
            changed[key] = after
        signals.extend(raised)
    return changed, _stamped(signals, cfg)


def _stamped(
    signals: Sequence[S], config: TrialConfig, fact: ClinicalFact | None = None
) -> tuple[S, ...]:
    """Record the configuration version on every signal (`values.config_version`).

    Every signal of `fact` also says whether the fact arrived late (recorded more than
    `late_after_hours` after it happened), where its rule did not say so itself.
    """
    if not signals:  # the usual outcome of a fact
        return ()
    late = {} if fact is None else late_values(fact, config)
    return tuple(
        signal.model_copy(
            update={
                "payload": signal.payload.model_copy(
                    update={
                        "values": {
                            **late,
                            **signal.payload.values,
                            "config_version": config.version,
                        }
                    }
                )
            }
        )
        for signal in signals
    )
