"""Fold facts into participant state and through the rule catalogue (core layer; pure).

The same functions serve live processing, replay and audit: the same facts in the same
order, with the same trial configuration, give the same states and the same signal bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache, partial
from types import ModuleType

from schemas import ClinicalFact, SignalRaised
from services.rules.core._history import prune, retention
from services.rules.core.config import DEFAULT_CONFIG, TrialConfig
from services.rules.core.projection import evolve, initial_state
from services.rules.core.rules import (
    aki_absolute,
    aki_relative,
    aki_stage,
    death,
    he_onset,
    he_worsening,
    inf_bacteraemia,
    inf_catheter,
    inf_fever,
    inf_procedure,
    inf_qsofa,
    inf_sbp,
    inf_sirs,
    ir_msc_reaction,
    ir_msc_thrombo,
    ir_msc_vitals,
    lab_grade3,
    lab_grade4,
    lfp_meld,
    lfp_meld_rise,
    lfp_organ_failure,
    lfp_transplant,
    pe_allergy,
    pe_citrate,
    pe_hypotension,
    sae,
    sae_unreported,
    susar,
    vb_bleeding_ae,
    vb_hb_low,
    vb_hb_major,
    vb_hb_minor,
    vb_pe_risk,
    vb_rebleed,
)
from services.rules.core.signals import system_signal
from services.rules.core.state import ParticipantState

__all__ = [
    "RULES",
    "Evaluation",
    "Rule",
    "Step",
    "catalogue",
    "evaluate",
    "evaluate_guarded",
    "evolve",
    "initial_state",
    "replay",
]

Step = tuple[ParticipantState, tuple[SignalRaised, ...]]
StateKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Rule:
    """One catalogue entry: a stable id, its version and its pure `evaluate`."""

    rule_id: str
    rule_version: int
    evaluate: Callable[[ParticipantState, ClinicalFact], Step]


#: Rules that read no configuration (SAE family) ...
_PLAIN: tuple[ModuleType, ...] = (sae, death, susar)
#: ... then the clinical families, in a fixed order. HE runs after infection and bleeding so
#: their findings of the same fact are there for its precipitant notes (HE-05); then liver
#: progression, AKI and CTCAE lab grades; SAE-05 runs last, after every signal of the fact
#: has been tracked (`sae_unreported.track`), so an SAE-01 on this fact counts.
_CONFIGURED: tuple[ModuleType, ...] = (
    vb_bleeding_ae,
    vb_rebleed,
    vb_hb_major,
    vb_hb_minor,
    vb_hb_low,
    vb_pe_risk,
    inf_fever,
    inf_sirs,
    inf_qsofa,
    inf_sbp,
    inf_bacteraemia,
    inf_procedure,
    inf_catheter,
    ir_msc_reaction,
    ir_msc_vitals,
    ir_msc_thrombo,
    pe_citrate,
    pe_hypotension,
    pe_allergy,
    he_onset,
    he_worsening,
    lfp_meld,
    lfp_meld_rise,
    lfp_organ_failure,
    lfp_transplant,
    aki_absolute,
    aki_relative,
    aki_stage,
    lab_grade3,
    lab_grade4,
    sae_unreported,
)


@lru_cache(maxsize=8)
def catalogue(config: TrialConfig) -> tuple[Rule, ...]:
    """The rule catalogue in evaluation order, with `config` bound into every rule."""
    plain = [Rule(m.RULE_ID, m.RULE_VERSION, m.evaluate) for m in _PLAIN]
    configured = [
        Rule(m.RULE_ID, m.RULE_VERSION, partial(m.evaluate, config=config)) for m in _CONFIGURED
    ]
    return (*plain, *configured)


#: The catalogue with the RULES.md defaults; to add a rule, write core/rules/<name>.py and
#: list it above.
RULES: tuple[Rule, ...] = catalogue(DEFAULT_CONFIG)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What evaluating one fact produced; `failed` names the steps that raised (a bug)."""

    state: ParticipantState | None
    signals: tuple[SignalRaised, ...]
    failed: tuple[str, ...] = ()


def _rules(config: TrialConfig | None) -> tuple[Rule, ...]:
    return RULES if config is None else catalogue(config)


def _project(
    state: ParticipantState | None, fact: ClinicalFact, config: TrialConfig
) -> ParticipantState:
    horizon, default = retention(config)
    return prune(evolve(state, fact), horizon, default=default)


def evaluate(
    state: ParticipantState | None, fact: ClinicalFact, config: TrialConfig | None = None
) -> Step:
    """Evolve the state, then fold it through every rule in catalogue order."""
    cfg = config or DEFAULT_CONFIG
    current = _project(state, fact, cfg)
    signals: list[SignalRaised] = []
    for rule in _rules(config):
        current, raised = rule.evaluate(current, fact)
        current = sae_unreported.track(current, raised)
        signals.extend(raised)
    return current, _stamped(signals, cfg)


def evaluate_guarded(
    state: ParticipantState | None, fact: ClinicalFact, config: TrialConfig | None = None
) -> Evaluation:
    """Evaluate like `evaluate`, but isolate a rule that raises (a defect) from the others.

    A failing rule's state change is dropped, the other rules still run, and a SYS-01 signal
    says which step failed, so a bug in one rule never silences an SAE from another.
    """
    cfg = config or DEFAULT_CONFIG
    try:
        current = _project(state, fact, cfg)
    except Exception as exc:  # a defect in the projection: nothing else can run on this fact
        failed: tuple[str, ...] = (f"evolve:{type(exc).__name__}",)
        arm = None if state is None else state.arm
        signal = system_signal(fact, stage="evaluate", failed=failed, arm=arm)
        return Evaluation(state, _stamped([signal], cfg), failed)
    signals: list[SignalRaised] = []
    failures: list[str] = []
    for rule in _rules(config):
        try:
            current, raised = rule.evaluate(current, fact)
        except Exception as exc:  # a defect in this rule: isolate it (see docstring)
            failures.append(f"{rule.rule_id}:{type(exc).__name__}")
            continue
        current = sae_unreported.track(current, raised)
        signals.extend(raised)
    if failures:
        failed = tuple(failures)
        signals.append(system_signal(fact, stage="evaluate", failed=failed, arm=current.arm))
    return Evaluation(current, _stamped(signals, cfg), tuple(failures))


def replay(
    facts: Iterable[ClinicalFact], config: TrialConfig | None = None
) -> tuple[dict[StateKey, ParticipantState], tuple[SignalRaised, ...]]:
    """Fold a history exactly as live processing does; return final states and all signals."""
    states: dict[StateKey, ParticipantState] = {}
    signals: list[SignalRaised] = []
    for fact in facts:
        key = (fact.trial_id, fact.participant_id)
        outcome = evaluate_guarded(states.get(key), fact, config)
        if outcome.state is not None:
            states[key] = outcome.state
        signals.extend(outcome.signals)
    return states, tuple(signals)


def _stamped(signals: list[SignalRaised], config: TrialConfig) -> tuple[SignalRaised, ...]:
    """Record the configuration version on every signal (`values.config_version`)."""
    return tuple(
        signal.model_copy(
            update={
                "payload": signal.payload.model_copy(
                    update={"values": {**signal.payload.values, "config_version": config.version}}
                )
            }
        )
        for signal in signals
    )
