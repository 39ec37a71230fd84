"""Properties every rule must keep: determinism, traceability, once-only keys, durable state."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings

from schemas import ClinicalFact, SignalRaised
from services.rules.core.engine import evaluate_guarded, replay
from services.rules.core.state import ParticipantState

from .strategies import fact_histories

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None)


@PROPERTY_SETTINGS
@given(history=fact_histories())
def test_replay_is_deterministic_to_the_byte(history: list[ClinicalFact]) -> None:
    """Replaying the same history twice yields identical states and signal bytes (audit)."""
    states_a, signals_a = replay(history)
    states_b, signals_b = replay(history)

    assert [s.model_dump_json() for s in signals_a] == [s.model_dump_json() for s in signals_b]
    assert states_a == states_b


@PROPERTY_SETTINGS
@given(history=fact_histories())
def test_every_signal_cites_facts_in_the_history(history: list[ClinicalFact]) -> None:
    """Each signal's evidence and cause are facts we actually received (traceability)."""
    fact_ids = {fact.event_id for fact in history}

    _, signals = replay(history)

    for signal in signals:
        assert set(signal.payload.evidence_event_ids) <= fact_ids
        assert signal.causation_id in fact_ids


@PROPERTY_SETTINGS
@given(history=fact_histories())
def test_rules_fire_at_most_once_per_key(history: list[ClinicalFact]) -> None:
    """SAE-01/SAE-04 fire once per AE, SAE-03 once per participant; signal ids are unique."""
    _, signals = replay(history)

    per_key = Counter(
        (s.payload.rule_id, s.participant_id, s.payload.values.get("ae_ref"))
        for s in signals
        if s.payload.rule_id != "SAE-03"
    )
    deaths = Counter(s.participant_id for s in signals if s.payload.rule_id == "SAE-03")
    assert all(count == 1 for count in per_key.values())
    assert all(count == 1 for count in deaths.values())
    assert len({s.event_id for s in signals}) == len(signals)


@PROPERTY_SETTINGS
@given(history=fact_histories())
def test_no_rule_defect_on_valid_facts(history: list[ClinicalFact]) -> None:
    """No rule raises on a valid fact: no SYS-01 signal comes out of a valid history."""
    _, signals = replay(history)

    assert [s for s in signals if s.payload.rule_id == "SYS-01"] == []


@PROPERTY_SETTINGS
@given(history=fact_histories())
def test_stored_state_gives_the_same_signals(history: list[ClinicalFact]) -> None:
    """Storing state as JSON between facts changes nothing (live with storage == replay)."""
    stored: dict[tuple[str, str], str] = {}
    live: list[SignalRaised] = []
    for fact in history:
        key = (fact.trial_id, fact.participant_id)
        state = ParticipantState.from_json(stored[key]) if key in stored else None
        outcome = evaluate_guarded(state, fact)
        assert outcome.state is not None
        stored[key] = outcome.state.to_json()
        live.extend(outcome.signals)

    _, replayed = replay(history)

    assert [s.model_dump_json() for s in live] == [s.model_dump_json() for s in replayed]
