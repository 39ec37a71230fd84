"""Folding one more fact costs the same whatever the size of the participant's history.

Measured 20,000 grade-1 AEs of one participant slowing the rules thirty-fold: every AE fact
rebuilt and re-sorted the whole AE tuple and scanned it several times. No wall clock here
(the cores are shared): the cost of folding one fact is counted instead, as the Python and
C calls the profiler sees (`sys.setprofile`) and the memory allocated at the peak
(`tracemalloc`: a copy of a 50,000-item tuple is 400 kB, which no call count shows). The
fact after a few warm-up facts is measured, so indexes made once per history are paid for
before (amortised), as in a long-running fold.

AEs are never pruned, so their history grows without bound. Labs and treatments are
pruned to each kind's retention window (`_history.retention`): a state that has seen
50,000 of them, an hour apart, keeps only that window, and the first warm-up fact prunes
the rest. Labs and treatments are compared from 5,000 facts on, when that window is full:
`prune` and several rules still read the kept part that a fact can touch (e.g. every kept
treatment per treatment fact), so their cost grows until the window fills (50 to ~190 kept
vasopressor sessions here) and is flat after it.
"""

from __future__ import annotations

import sys
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from types import FrameType
from typing import Any

import pytest

from schemas import (
    AdverseEventReported,
    ClinicalFact,
    LabResultRecorded,
    Treatment,
    TreatmentAdministered,
)
from services.rules.core._observing import observations_of
from services.rules.core.config import DEFAULT_CONFIG
from services.rules.core.engine import evaluate_guarded
from services.rules.core.projection import ae_state
from services.rules.core.state import AdverseEvents, Observation, ParticipantState, Procedure
from tests.unit.rules.factories import (
    T0,
    ae_reported,
    enrolled,
    lab_result,
    procedure,
    unique,
)

SMALL, LARGE = 50, 50_000
FULL_WINDOW = 5_000  # hourly labs and treatments: the retention windows (8-23 days) are full
ANALYTES = (("hb", 120.0), ("sodium", 138.0), ("platelets", 150.0), ("crp", 5.0))
#: Facts folded before the measured one: whole turns of the analytes, so the measured fact's
#: dispatch plan and kind look-ups (process-wide memos) are made before, as in a long run.
WARM_UP = 2 * len(ANALYTES)
#: Allowed growth from 50 to 50,000 facts of history: a factor for the bisections' and
#: tries' extra levels, plus a constant for one-off noise (an interned string, a memo).
CALL_FACTOR, CALL_SLACK = 1.25, 200
BYTES_FACTOR, BYTES_SLACK = 1.5, 16_000


def _at(index: int) -> dict[str, Any]:
    return {"at": T0 + timedelta(hours=index)}


def _ae(pid: str, index: int) -> ClinicalFact:
    return ae_reported(pid, env=_at(index), ae_ref=f"AE-{index:06d}", grade=1, term="Nausea")


def _lab(pid: str, index: int) -> ClinicalFact:
    analyte, value = ANALYTES[index % len(ANALYTES)]
    return lab_result(pid, analyte, value, **_at(index))


def _treatment(pid: str, index: int) -> ClinicalFact:
    return procedure(pid, Treatment.VASOPRESSOR, minutes=30, **_at(index))


def _enrolled(pid: str) -> ParticipantState:
    state = evaluate_guarded(None, enrolled(pid, at=T0 - timedelta(days=1))).state
    assert state is not None
    return state


def _with_aes(pid: str, size: int) -> ParticipantState:
    """What folding `size` AE reports leaves (built directly: the old fold was quadratic)."""
    aes = []
    for index in range(size):
        fact = _ae(pid, index)
        assert isinstance(fact, AdverseEventReported)
        aes.append(ae_state(fact.payload, fact.occurred_at, (fact.event_id,)))
    state = _enrolled(pid)
    aes.sort(key=lambda ae: ae.ae_ref)
    table = AdverseEvents.of(aes)
    return replace(state, adverse_events=table, clock=T0 + timedelta(hours=size - 1))


def _with_labs(pid: str, size: int) -> ParticipantState:
    """Every observation of `size` labs; the first fold prunes what is past retention."""
    found: list[Observation] = []
    for index in range(size):
        fact = _lab(pid, index)
        assert isinstance(fact, LabResultRecorded)
        found.extend(observations_of(fact.payload, fact.occurred_at, fact.event_id))
    found.sort(key=lambda o: (o.at, o.kind, o.event_id.int))
    state = _enrolled(pid)
    return replace(state, observations=tuple(found), clock=T0 + timedelta(hours=size - 1))


def _with_treatments(pid: str, size: int) -> ParticipantState:
    """Every one of `size` treatments; the first fold prunes what is past retention."""
    procedures = []
    for index in range(size):
        fact = _treatment(pid, index)
        assert isinstance(fact, TreatmentAdministered)
        payload = fact.payload
        procedures.append(
            Procedure(payload.treatment.value, fact.occurred_at, fact.event_id, payload.ended_at)
        )
    state = _enrolled(pid)
    return replace(state, procedures=tuple(procedures), clock=T0 + timedelta(hours=size - 1))


Case = tuple[Callable[[str, int], ParticipantState], Callable[[str, int], ClinicalFact]]
CASES: dict[str, Case] = {
    "ae": (_with_aes, _ae),
    "lab": (_with_labs, _lab),
    "treatment": (_with_treatments, _treatment),
}


def _cost(kind: str, size: int) -> tuple[int, int]:
    """(profiler calls, peak bytes allocated) of folding the fact after `size` + warm-up."""
    build, make = CASES[kind]
    pid = unique("P")
    state = build(pid, size)
    for index in range(size, size + WARM_UP):
        after = evaluate_guarded(state, make(pid, index)).state
        assert after is not None
        state = after
    fact = make(pid, size + WARM_UP)
    calls = 0

    def count(_frame: FrameType, event: str, _arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(count)
    try:
        evaluate_guarded(state, fact, DEFAULT_CONFIG)
    finally:
        sys.setprofile(None)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        outcome = evaluate_guarded(state, fact, DEFAULT_CONFIG)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.failed == ()
    return calls, peak - before


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "small"), [("ae", SMALL), ("lab", FULL_WINDOW), ("treatment", FULL_WINDOW)]
)
def test_folding_a_fact_costs_the_same_after_a_short_or_a_50000_fact_history(
    kind: str, small: int
) -> None:
    """The fold of one AE, lab or treatment does not grow with the history before it."""
    small_calls, small_bytes = _cost(kind, small)
    large_calls, large_bytes = _cost(kind, LARGE)

    assert large_calls <= small_calls * CALL_FACTOR + CALL_SLACK, (small_calls, large_calls)
    assert large_bytes <= small_bytes * BYTES_FACTOR + BYTES_SLACK, (small_bytes, large_bytes)


def test_the_cost_counters_see_a_history_linear_fold() -> None:
    """The measure itself: work that reads every AE once is caught by the call count."""
    pid = unique("P")
    calls: list[int] = []
    for size in (SMALL, 40 * SMALL):
        facts = [_ae(pid, index) for index in range(size)]
        aes = [
            ae_state(fact.payload, fact.occurred_at, (fact.event_id,))
            for fact in facts
            if isinstance(fact, AdverseEventReported)
        ]
        count = 0

        def profile(_frame: FrameType, event: str, _arg: object) -> None:
            nonlocal count
            count += event in ("call", "c_call")

        sys.setprofile(profile)
        try:
            sorted(aes, key=lambda ae: ae.ae_ref)  # what each AE fact did before
        finally:
            sys.setprofile(None)
        calls.append(count)

    assert calls[1] > calls[0] * CALL_FACTOR + CALL_SLACK
