"""Fold properties beyond replay: duplicates, arrival order, corrections, ticks."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import (
    ClinicalFact,
    DeathRecorded,
    FactCorrected,
    LabResultRecorded,
    ParticipantEnrolled,
    SignalRaised,
    SignalUpdated,
)
from services.rules import app
from services.rules.adapters.memory import InMemoryRulesStore
from services.rules.core.fold import replay

from .strategies import LAB_VALUES, fact_histories
from .test_sae_clock import tick

# Properties of the fold over generated histories with corrections (hypothesis).
pytestmark = pytest.mark.slow

PROPERTY_SETTINGS = settings(max_examples=40, deadline=None)
CONSUMER = "rules-evaluator"


@st.composite
def corrected_histories(draw: st.DrawFn) -> list[Any]:
    """A history where some lab results are later corrected (new value) or retracted."""
    history: list[Any] = draw(fact_histories(max_size=20))
    labs = [f for f in history if isinstance(f, LabResultRecorded)]
    chosen = draw(st.lists(st.sampled_from(labs), min_size=1, max_size=4)) if labs else []
    for target in dict.fromkeys(chosen):
        replacement = None
        kind_values = [v for v in LAB_VALUES.values() if target.payload.result.value in v]
        if kind_values and draw(st.booleans()):
            value = draw(st.sampled_from(kind_values[0]))
            result = target.payload.result.model_copy(
                update={"value": value, "normalised_value": value}
            )
            replacement = target.payload.model_copy(update={"result": result}).model_dump(
                mode="json"
            )
        correction = FactCorrected(
            event_id=draw(st.uuids()),
            trial_id=target.trial_id,
            site_id=target.site_id,
            participant_id=target.participant_id,
            occurred_at=target.occurred_at,
            recorded_at=target.recorded_at + timedelta(hours=draw(st.integers(0, 48))),
            source="edc",
            source_ref=f"fix-{draw(st.integers(0, 10**9))}",
            actor="tester",
            payload={
                "supersedes_event_id": target.event_id,
                "reason": "amended",
                "replacement": replacement,
            },
        )
        at = history.index(target) + 1
        history.insert(draw(st.integers(at, len(history))), correction)
    return history


@PROPERTY_SETTINGS
@given(history=corrected_histories())
def test_corrections_replay_identically_and_retract_only_what_was_raised(
    history: list[ClinicalFact],
) -> None:
    """Retractions replay identically and name an earlier signal, once, same urgency and people."""
    _, first = replay(history)
    _, second = replay(history)
    raised: dict[object, SignalRaised] = {}
    retracted: set[object] = set()

    assert [s.model_dump_json() for s in first] == [s.model_dump_json() for s in second]
    for signal in first:
        if isinstance(signal, SignalUpdated):
            original = raised[signal.signal_id]
            assert signal.signal_id not in retracted
            assert signal.payload.urgency == original.payload.urgency
            assert signal.payload.recipients == original.payload.recipients
            assert isinstance(next(f for f in history if f.event_id == signal.causation_id),
                              FactCorrected)  # fmt: skip
            retracted.add(signal.signal_id)
        else:
            raised[signal.event_id] = signal


@PROPERTY_SETTINGS
@given(history=fact_histories(max_size=15), data=st.data())
def test_duplicate_deliveries_change_nothing(
    history: list[ClinicalFact], data: st.DataObject
) -> None:
    """Redelivered facts (any, any number of times, in any later batch) change nothing."""
    cut = data.draw(st.integers(0, len(history)))
    delivered = history[:cut]
    early = data.draw(st.lists(st.sampled_from(delivered), max_size=4)) if delivered else []
    late = data.draw(st.lists(st.sampled_from(history), max_size=4)) if history else []

    async def run(batches: list[list[ClinicalFact]]) -> list[bytes]:
        store = InMemoryRulesStore()
        for batch in batches:
            await app.handle_batch(batch, consumer=CONSUMER, store=store)
        return [row.body for row in await store.unpublished(limit=10_000)]

    once = asyncio.run(run([history[:cut], history[cut:]]))
    twice = asyncio.run(run([delivered + early, early + history[cut:] + late]))

    assert twice == once


def _ordered_parts(history: list[ClinicalFact]) -> tuple[list[ClinicalFact], list[ClinicalFact]]:
    enrolments = {f.participant_id: f for f in history if isinstance(f, ParticipantEnrolled)}
    rest = [
        f
        for f in history
        if not isinstance(f, ParticipantEnrolled)
        and f.participant_id in enrolments
        and f.occurred_at >= enrolments[f.participant_id].occurred_at
    ]
    return list(enrolments.values()), rest


@PROPERTY_SETTINGS
@given(history=fact_histories(max_size=25), data=st.data())
def test_order_independent_findings_do_not_depend_on_arrival_order(
    history: list[ClinicalFact], data: st.DataObject
) -> None:
    """With enrolments first, who died (SAE-03) and each term's worst lab grade (LAB-SHIFT)
    are the same whatever order the later facts arrive in."""
    enrolments, rest = _ordered_parts(history)
    shuffled = data.draw(st.permutations(rest))

    def findings(facts: list[ClinicalFact]) -> tuple[set[str], dict[tuple[str, object], int]]:
        _, signals = replay([*enrolments, *facts])
        deaths = {s.participant_id for s in signals if s.payload.rule_id == "SAE-03"}
        worst: dict[tuple[str, object], int] = defaultdict(int)
        for s in signals:
            if s.payload.rule_id == "LAB-SHIFT":
                key = (s.participant_id, s.payload.values["kind"])
                worst[key] = max(worst[key], int(str(s.payload.values["worst_grade"])))
        return deaths, dict(worst)

    assert findings(rest) == findings(list(shuffled))
    died = {f.participant_id for f in rest if isinstance(f, DeathRecorded)}
    assert died <= findings(rest)[0]


@PROPERTY_SETTINGS
@given(
    history=fact_histories(max_size=20), minutes=st.lists(st.integers(0, 60 * 24 * 7), max_size=6)
)
def test_clock_ticks_replay_identically_and_cite_the_log(
    history: list[ClinicalFact], minutes: list[int]
) -> None:
    """Histories with clock ticks replay byte for byte; SAE-02 cites a tick and an SAE fact."""
    start = min((f.occurred_at for f in history), default=None)
    if start is None:
        return
    ticks = [tick(start + timedelta(minutes=m)) for m in sorted(minutes)]
    merged: list[Any] = [*history, *ticks]
    ids = {f.event_id for f in merged}

    _, first = replay(merged)
    _, second = replay(merged)

    assert [s.model_dump_json() for s in first] == [s.model_dump_json() for s in second]
    for s in first:
        if s.payload.rule_id == "SAE-02":
            assert set(s.payload.evidence_event_ids) <= ids
            assert s.causation_id in {t.event_id for t in ticks}
