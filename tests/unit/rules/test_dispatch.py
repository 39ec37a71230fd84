"""Per-rule dispatch gives what running every rule on every fact gives, byte for byte.

The engine skips the rules a fact cannot make act (`TRIGGERS` in each rule module,
`core/_dispatch.py`); `dispatch=False` keeps the reference fold that runs every rule. Both
folds run side by side over realistic feeds, and after every fact their signal bytes and
participant states must be the same: the demo generator's feed accepted by ingest (late
cultures included), the golden replay's history (corrections, retractions, clock ticks,
the v2 configuration), and generated histories with corrections. A stricter check watches
every rule in the reference fold: whenever one changes the state or raises a signal, the
dispatch plan of that fact must have run it (so a wrong declaration shows up as soon as a
skipped rule would have done anything, even if the outputs happen to agree).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from schemas import LOG_FACT_ADAPTER, ClinicalFact, ClockTicked, FactCorrected, canonical_bytes
from services.ingest.core.accept import Accepted, accept
from services.rules.core import engine
from services.rules.core._dispatch import Rule, plan
from services.rules.core.config import DEFAULT_CONFIG, TrialConfig
from services.rules.core.engine import Signal, StateKey, evaluate_guarded, evaluate_tick
from services.rules.core.fold import replay
from services.rules.core.state import ByKind, ParticipantState
from services.rules.core.state_codec import encode_state
from tools.demo.generator import HISTORIC_START, generate_events

from .test_properties_corrections import corrected_histories
from .test_replay_golden import realistic_history

Step = tuple[ParticipantState, tuple[Any, ...]]

CONFIGS = Path(__file__).parents[3] / "services" / "rules" / "trial_config"
FEED_EVENTS = 6_000
START = datetime(2024, 1, 1, tzinfo=UTC)


def _config(name: str) -> TrialConfig:
    return TrialConfig.from_mapping(tomllib.loads((CONFIGS / name).read_text(encoding="utf-8")))


def _demo_feed() -> Iterator[ClinicalFact]:
    """The demo feed as the 1M-event benchmark logs it (ingest, then the log's bytes)."""
    for index, item in enumerate(generate_events(FEED_EVENTS, start=HISTORIC_START)):
        outcome = accept(item, recorded_at=START + timedelta(seconds=index), actor="dispatch")
        if isinstance(outcome, Accepted):
            yield LOG_FACT_ADAPTER.validate_json(canonical_bytes(outcome.wire))


def _bytes(signals: Iterable[Signal]) -> list[str]:
    return [s.model_dump_json() for s in signals]


def _side_by_side(history: Iterable[Any], config: TrialConfig) -> dict[str, int]:
    """Fold `history` both ways, asserting equal signal bytes and states after every fact."""
    fast: dict[StateKey, ParticipantState] = {}
    slow: dict[StateKey, ParticipantState] = {}
    seen = {"facts": 0, "signals": 0, "corrections": 0, "ticks": 0}
    for fact in history:
        if isinstance(fact, ClockTicked):
            changed_fast, ticked_fast = evaluate_tick(fast, fact, config)
            changed_slow, ticked_slow = evaluate_tick(slow, fact, config)
            fast.update(changed_fast)
            slow.update(changed_slow)
            assert _bytes(ticked_fast) == _bytes(ticked_slow), fact.event_id
            assert changed_fast == changed_slow, fact.event_id
            seen["ticks"] += 1
            continue
        key = (fact.trial_id, fact.participant_id)
        got = evaluate_guarded(fast.get(key), fact, config, dispatch=True)
        want = evaluate_guarded(slow.get(key), fact, config, dispatch=False)
        assert _bytes(got.signals) == _bytes(want.signals), (type(fact).__name__, fact.event_id)
        assert got.state == want.state, (type(fact).__name__, fact.event_id)
        assert got.failed == want.failed
        if got.state is not None and want.state is not None:
            fast[key], slow[key] = got.state, want.state
        seen["facts"] += 1
        seen["signals"] += len(got.signals)
        seen["corrections"] += isinstance(fact, FactCorrected)
    stored = {k: encode_state(s) for k, s in fast.items()}
    assert stored == {k: encode_state(s) for k, s in slow.items()}
    return seen


@cache
def _demo_facts() -> tuple[ClinicalFact, ...]:
    return tuple(_demo_feed())


@pytest.mark.slow
def test_dispatch_matches_every_rule_on_the_demo_feed() -> None:
    """The dispatching fold gives the reference fold's bytes after every fact."""
    seen = _side_by_side(_demo_facts(), _config("NCT01724398.v1.toml"))

    assert seen["facts"] > FEED_EVENTS * 0.9
    assert seen["signals"] > 0


@pytest.mark.slow
def test_dispatch_matches_every_rule_with_corrections_late_data_and_ticks() -> None:
    """Corrections, retractions and clock ticks come out the same under dispatch."""
    seen = _side_by_side(realistic_history(), _config("NCT01724398.v2.toml"))

    assert seen["corrections"] > 0
    assert seen["ticks"] > 0
    assert seen["signals"] > 0


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(history=corrected_histories())
def test_dispatch_matches_every_rule_on_generated_histories(history: list[Any]) -> None:
    """Generated histories (every fact type, corrections) fold the same both ways."""
    for config in (DEFAULT_CONFIG, _config("NCT01724398.v2.toml")):
        fast_states, fast_signals = replay(history, config)
        slow_states, slow_signals = replay(history, config, dispatch=False)

        assert _bytes(fast_signals) == _bytes(slow_signals)
        assert fast_states == slow_states


def _actions_off_plan(history: Iterable[Any], config: TrialConfig) -> tuple[list[str], int]:
    """Fold every rule on every fact, and name each action the fact's plan would skip.

    An action is a rule returning a changed state or any signal. The plan is asked with the
    state the rule was given, as the dispatching fold asks a rule's state test.
    """
    off_plan: list[str] = []
    acted = 0
    watched: list[Rule] = []

    def watch(rule: Rule) -> Rule:
        def evaluate(state: ParticipantState, fact: ClinicalFact) -> Step:
            nonlocal acted
            after, raised = rule.evaluate(state, fact)
            if raised or (after is not state and after != state):
                acted += 1
                tests = {r.rule_id: active for r, active in plan(tuple(watched), fact)}
                active = tests.get(rule.rule_id, _skipped)
                if active is _skipped or (active is not None and not active(state)):
                    off_plan.append(f"{rule.rule_id} acted on {type(fact).__name__}")
            return after, raised

        return Rule(rule.rule_id, rule.rule_version, evaluate, rule.triggers)

    watched.extend(watch(rule) for rule in engine.rules_for(config))
    replay(history, engine.RuleSet(config, tuple(watched)), dispatch=False)
    return off_plan, acted


def _skipped(_state: ParticipantState) -> bool:
    return False


@pytest.mark.slow
@pytest.mark.parametrize(
    ("feed", "config"),
    [("demo", "NCT01724398.v1.toml"), ("realistic", "NCT01724398.v2.toml")],
)
def test_no_rule_acts_on_a_fact_its_triggers_leave_out(feed: str, config: str) -> None:
    """Every state change and signal of the full fold comes from a planned rule."""
    history = _demo_facts() if feed == "demo" else realistic_history()

    off_plan, acted = _actions_off_plan(history, _config(config))

    assert off_plan == []
    assert acted > 0


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(history=corrected_histories())
def test_no_rule_acts_off_plan_on_generated_histories(history: list[Any]) -> None:
    """The same on generated histories of every fact type, both configurations."""
    for config in (DEFAULT_CONFIG, _config("NCT01724398.v2.toml")):
        off_plan, _ = _actions_off_plan(history, config)

        assert off_plan == []


def test_every_rule_declares_triggers_or_runs_on_every_fact() -> None:
    """Only SAE-05 (due on any later fact) is left to run on every fact."""
    undeclared = [rule.rule_id for rule in engine.RULES if rule.triggers is None]

    assert undeclared == ["SAE-05"]


@pytest.mark.slow
@pytest.mark.parametrize("config", ["NCT01724398.v1.toml", "NCT01724398.v2.toml"])
def test_kept_groups_by_kind_are_those_of_the_history(config: str) -> None:
    """The by-kind groups carried from fact to fact equal a fresh grouping."""
    states, _ = replay(_demo_facts()[:2_000], _config(config))

    checked = 0
    for state in states.values():
        index = state.valid_by_kind()
        if index is not None:
            assert index.groups == ByKind.of(state.observations).groups
            checked += 1

    assert checked > 0
