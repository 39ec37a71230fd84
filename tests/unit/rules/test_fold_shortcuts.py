"""The fold's shortcuts give exactly what the computations they skip would give.

`projection.evolve` leaves the pre-randomisation baselines alone when a fact cannot change
them (`projection._baselines_stand`). The argument that this is safe (every state the fold
hands `evolve` holds its baselines; pruning never splits a kind's same-time observations;
so the baselines stand unless enrolment or the pre-enrolment observations change) is
checked step by step after every fact of generated and hand-made histories, including one
where pruning dropped a baseline and a late result of the same time arrives.

`_he.previous` bisects the West Haven series instead of scanning it: checked against the
scan on series full of ties.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields, replace
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import ClinicalFact, ClockTicked, FactCorrected
from services.rules.core import _observing, projection
from services.rules.core._history import prune, retention
from services.rules.core.config import DEFAULT_CONFIG
from services.rules.core.engine import evaluate_guarded
from services.rules.core.rules import _he
from services.rules.core.state import ByKind, Observation, ParticipantState, observation_order

from .factories import T0, enrolled, envelope, lab_result, unique, vitals
from .strategies import fact_histories
from .test_properties_corrections import corrected_histories


def _fold_checking_baselines(history: Iterable[Any]) -> dict[tuple[str, str], ParticipantState]:
    """Fold `history`, checking at every fact what `projection._baselines_stand` rests on.

    1. Every state the fold hands `evolve` already holds its baselines (recomputing them
       from it changes nothing).
    2. `prune` drops all observations of one kind and time or none of them, so never the
       latest pre-enrolment one of a kind without the others it ties with.
    3. Hence when `_baselines_stand` says so, recomputing the baselines of the evolved state
       changes nothing, and in any case `evolve`'s baselines are the full ones.
    """
    states: dict[tuple[str, str], ParticipantState] = {}
    horizon, default = retention(DEFAULT_CONFIG)
    for fact in history:
        if isinstance(fact, ClockTicked):
            continue
        key = (fact.trial_id, fact.participant_id)
        before = states.get(key)
        if before is not None:
            assert projection._with_baselines(before) == before  # 1
        evolved = projection.evolve(before, fact)
        _assert_prune_keeps_ties_together(evolved, prune(evolved, horizon, default=default))  # 2
        prior = before or projection.initial_state(fact)
        if projection._baselines_stand(prior, evolved, fact=fact):
            assert projection._with_baselines(evolved) == evolved  # 3, the shortcut
        assert projection._with_baselines(evolved).baselines == evolved.baselines  # 3
        outcome = evaluate_guarded(before, fact)
        if outcome.state is not None:
            states[key] = outcome.state
    return states


def _assert_prune_keeps_ties_together(state: ParticipantState, pruned: ParticipantState) -> None:
    kept = {(o.kind, o.at) for o in pruned.observations}
    dropped = {(o.kind, o.at) for o in state.observations} - {
        (o.kind, o.at) for o in pruned.observations
    }
    assert not kept & dropped
    assert sum(1 for o in state.observations if (o.kind, o.at) in kept) == len(pruned.observations)


def _retraction(target: ClinicalFact, *, at_hours: float) -> FactCorrected:
    env = envelope(target.participant_id, at=target.occurred_at)
    env["recorded_at"] = T0 + timedelta(hours=at_hours)
    payload = {"supersedes_event_id": target.event_id, "reason": "error", "replacement": None}
    return FactCorrected(**env, payload=payload)


def test_baselines_match_full_recomputation_when_pruning_dropped_a_same_time_baseline() -> None:
    """RULES.md §0.2 baselines: a late result tying a pruned baseline is weighed as in full."""
    pid = unique("P")
    # Unpruned, the late result (lowest id) would sort before the kept one and lose to it.
    late, low, high = UUID(int=1), UUID(int=2), UUID(int=3)
    retracted = lab_result(pid, "sodium", 133.0, at=T0, event_id=high)
    history: list[Any] = [
        lab_result(pid, "sodium", 131.0, at=T0, event_id=low),
        retracted,
        lab_result(pid, "hb", 100.0, at=T0 + timedelta(hours=1)),
        enrolled(pid, at=T0 + timedelta(days=1)),
        _retraction(retracted, at_hours=30),
        *(
            vitals(pid, env={"at": T0 + timedelta(days=day)}, heart_rate=80.0)
            for day in range(2, 40, 3)
        ),
        lab_result(pid, "sodium", 129.0, at=T0, event_id=late),
        lab_result(pid, "hb", 98.0, at=T0 + timedelta(days=41)),
    ]

    states = _fold_checking_baselines(history)

    [state] = states.values()
    assert [(o.kind, o.value) for o in state.baselines] == [("hb", 100.0), ("sodium", 129.0)]


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(history=fact_histories())
def test_baselines_match_full_recomputation_on_generated_histories(history: list[Any]) -> None:
    """RULES.md §0.2 baselines: skipping their recomputation never changes them."""
    _fold_checking_baselines(history)


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(history=corrected_histories())
def test_baselines_match_full_recomputation_with_corrections(history: list[Any]) -> None:
    """RULES.md §0.2 baselines: corrected and retracted results are weighed as in full."""
    _fold_checking_baselines(history)


_IDS = [UUID(int=n) for n in range(1, 6)]


@st.composite
def _west_haven_series(draw: st.DrawFn) -> tuple[ParticipantState, Observation]:
    """A West Haven history with shared times, grades and ids, and a point to look behind."""
    hours = st.integers(0, 4)
    made = draw(
        st.lists(
            st.builds(
                lambda h, grade, event_id: Observation(
                    "wh", T0 + timedelta(hours=h), float(grade), event_id
                ),
                hours,
                st.integers(0, 4),
                st.sampled_from(_IDS),
            ),
            max_size=12,
        )
    )
    observations = tuple(sorted(made, key=observation_order))
    point = draw(
        st.sampled_from(observations)
        if observations and draw(st.booleans())
        else st.builds(
            lambda h, event_id: Observation("wh", T0 + timedelta(hours=h), 2.0, event_id),
            hours,
            st.sampled_from(_IDS),
        )
    )
    return ParticipantState("NCT01724398", unique("P"), "S01", observations=observations), point


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(case=_west_haven_series())
def test_previous_west_haven_point_is_the_one_a_full_scan_picks(
    case: tuple[ParticipantState, Observation],
) -> None:
    """HE-02/INF-03: the point before a grade is the latest, highest, first-listed other one."""
    state, point = case
    earlier = [o for o in state.series("wh") if o.event_id != point.event_id and o.at <= point.at]
    expected = max(earlier, key=lambda o: (o.at, o.value), default=None)

    found = _he.previous(state, point)

    assert found is expected


def test_observation_copy_is_the_copy_dataclasses_replace_makes() -> None:
    """The fast copy of a state keeps every other field and starts fresh memos."""
    pid = unique("P")
    history: list[Any] = [
        lab_result(pid, "sodium", 131.0, at=T0),
        enrolled(pid, at=T0 + timedelta(hours=1)),
        vitals(pid, env={"at": T0 + timedelta(hours=2)}, heart_rate=120.0, temperature=39.0),
    ]
    state = _fold_checking_baselines(history)[(history[0].trial_id, pid)]
    state.series("hr", "temp")  # fills a memo the copy must not share
    observations = state.observations[1:]
    index = ByKind.of(observations)

    copied = _observing._copy(state, observations, by_kind=index, clock=T0)
    replaced = replace(state, observations=observations, by_kind=index, clock=T0)

    assert [getattr(copied, f.name) for f in fields(copied) if f.init] == [
        getattr(replaced, f.name) for f in fields(replaced) if f.init
    ]
    assert (copied.by_kind, copied._series, copied._of_fact) == (index, {}, {})
