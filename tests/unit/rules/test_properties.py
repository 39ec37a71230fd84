"""Properties every rule must keep: determinism, traceability, once-only keys, durable state."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from hypothesis import given, settings

from schemas import ClinicalFact, Role, SignalRaised, Urgency
from services.rules.core._history import retention
from services.rules.core.config import DEFAULT_CONFIG
from services.rules.core.engine import evaluate_guarded
from services.rules.core.fold import replay
from services.rules.core.state_codec import decode_state, encode_state

from .strategies import fact_histories

# Properties of the fold over generated histories (hypothesis).
pytestmark = pytest.mark.slow

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None)
AE_KEYED = frozenset({"VB-01", "VB-05", "INF-07", "INF-08", "IR-MSC-01", "IR-MSC-03", "PE-03"})
RANK = {"U3": 0, "U2": 1, "U1": 2, "U0": 3}
LATE = timedelta(hours=24)


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
    """SAE-01 pages and SAE-04 fire once per AE, SAE-03 once per participant; ids unique.

    SAE-01's follow-up updates of a case (`case_update`) are not pages and are left out.

    SAE-05 is left out: it fires once per due fact, naming every overdue signal (by design).
    """
    _, signals = replay(history)
    sae = [s for s in signals if s.payload.rule_id.startswith("SAE-")]

    per_key = Counter(
        (s.payload.rule_id, s.participant_id, s.payload.values.get("ae_ref"))
        for s in sae
        if s.payload.rule_id in {"SAE-01", "SAE-04"} and "case_update" not in s.payload.values
    )
    deaths = Counter(s.participant_id for s in sae if s.payload.rule_id == "SAE-03")
    assert all(count == 1 for count in per_key.values())
    assert all(count == 1 for count in deaths.values())
    assert len({s.event_id for s in signals}) == len(signals)


@PROPERTY_SETTINGS
@given(history=fact_histories())
def test_ae_route_rules_fire_once_per_ae_and_only_to_escalate(history: list[ClinicalFact]) -> None:
    """AE-keyed clinical rules fire once per AE and urgency, each re-fire more urgent (§0.2)."""
    _, signals = replay(history)
    seen: dict[tuple[str, str, object], list[int]] = defaultdict(list)

    for s in signals:
        if s.payload.rule_id in AE_KEYED:
            urgency = str(s.payload.values.get("clinical_urgency") or s.payload.urgency.value)
            seen[(s.payload.rule_id, s.participant_id, s.payload.values["ae_ref"])].append(
                RANK[urgency]
            )

    for ranks in seen.values():
        assert ranks == sorted(set(ranks))


@PROPERTY_SETTINGS
@given(history=fact_histories())
def test_signals_record_config_version_and_lateness(history: list[ClinicalFact]) -> None:
    """Every signal names its config version; clinical signals say `late` exactly when the
    triggering fact was recorded more than 24 h after it happened."""
    by_id = {fact.event_id: fact for fact in history}

    _, signals = replay(history)

    for s in signals:
        assert s.payload.values["config_version"] == DEFAULT_CONFIG.version
        if "late" in s.payload.values:
            cause = by_id[s.causation_id]
            assert s.payload.values["late"] == (cause.recorded_at - cause.occurred_at > LATE)
        assert s.payload.urgency is not Urgency.U3 or s.payload.recipients == (Role.DSMB_CHAIR,)


@PROPERTY_SETTINGS
@given(history=fact_histories())
def test_histories_stay_within_their_retention(history: list[ClinicalFact]) -> None:
    """Bounded projection: no observation older than its kind's window + allowance is kept."""
    horizon, default = retention(DEFAULT_CONFIG)

    states, _ = replay(history)

    for state in states.values():
        for o in state.observations:
            assert state.clock is not None
            assert o.at >= state.clock - horizon.get(o.kind, default)


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
        state = decode_state(stored[key]) if key in stored else None
        outcome = evaluate_guarded(state, fact)
        assert outcome.state is not None
        stored[key] = encode_state(outcome.state)
        live.extend(outcome.signals)

    _, replayed = replay(history)

    assert [s.model_dump_json() for s in live] == [s.model_dump_json() for s in replayed]
