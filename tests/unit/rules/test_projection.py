"""Projection histories: what the clinical rules remember, bounded, and stored compatibly."""

from __future__ import annotations

import json
from datetime import timedelta

from schemas import FactCorrected, LabResultRecorded, Treatment
from services.rules.core._history import retention
from services.rules.core.config import DEFAULT_CONFIG
from services.rules.core.engine import evaluate
from services.rules.core.fold import replay
from services.rules.core.projection import evolve
from services.rules.core.state_codec import decode_state, encode_state

from .factories import (
    T0,
    TRIAL,
    ae_reported,
    enrolled,
    envelope,
    fired,
    hours_after,
    lab_result,
    procedure,
    rule_ids,
    unique,
    vitals,
    west_haven,
)


def test_histories_hold_labs_vitals_grades_and_procedure_ends() -> None:
    """The projection keeps Hb, temperature, HR, WH grade (with event ids) and procedure ends."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        procedure(pid, Treatment.PLASMA_EXCHANGE, at=T0, minutes=150),
        lab_result(pid, "hb", 95.0, at=hours_after(1)),
        vitals(pid, temperature=37.2, heart_rate=88, diastolic_bp=60, env={"at": hours_after(2)}),
        west_haven(pid, 1, at=hours_after(3)),
        lab_result(pid, "ammonia", 60.0, high=32.0, at=hours_after(4)),
    ]
    states, _ = replay(facts)
    state = states[(TRIAL, pid)]

    assert [(o.kind, o.value, o.event_id) for o in state.observations] == [
        ("hb", 95.0, facts[2].event_id),
        ("hr", 88.0, facts[3].event_id),
        ("temp", 37.2, facts[3].event_id),
        ("wh", 1.0, facts[4].event_id),
        ("ammonia", 60.0, facts[5].event_id),
    ]
    assert state.series("ammonia")[0].high == 32.0
    assert state.procedures[0].ended_at == T0 + timedelta(minutes=150)


def test_value_in_a_non_canonical_unit_without_normalisation_is_not_guessed() -> None:
    """A result ingest did not normalise is used only when its unit already is canonical."""
    pid = unique("P")
    raw_si = LabResultRecorded(
        **envelope(pid), payload={"loinc": "718-7", "result": {"value": 90, "unit": "g/L"}}
    )
    raw_gdl = LabResultRecorded(
        **envelope(pid), payload={"loinc": "718-7", "result": {"value": 9, "unit": "g/dL"}}
    )

    state = evolve(evolve(None, raw_si), raw_gdl)

    assert [(o.value, o.event_id) for o in state.observations] == [(90.0, raw_si.event_id)]


def test_old_stored_state_without_histories_still_loads() -> None:
    """Backward compatibility: a state stored before the histories existed decodes with defaults."""
    pid = unique("P")
    states, _ = replay([enrolled(pid), procedure(pid, Treatment.UC_MSC_INFUSION, at=T0)])
    raw = json.loads(encode_state(states[(TRIAL, pid)]))
    for new_field in ("observations", "episodes", "clock"):
        del raw[new_field]

    old = decode_state(json.dumps(raw))

    assert (old.observations, old.episodes, old.clock) == ((), (), None)
    assert old.procedures == states[(TRIAL, pid)].procedures
    _, signals = evaluate(old, vitals(pid, temperature=38.3, env={"at": hours_after(2)}))
    assert rule_ids(signals) == ["INF-01"]


def test_state_with_histories_round_trips_exactly() -> None:
    """to_json/from_json round-trip histories, episodes and procedure ends exactly."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        procedure(pid, Treatment.UC_MSC_INFUSION, at=T0, minutes=30),
        vitals(pid, temperature=38.4, env={"at": hours_after(3)}),
        ae_reported(pid, term="Hepatic encephalopathy", grade=2, llt="10014625"),
        lab_result(pid, "ica", 1.05, low=1.12, at=hours_after(1)),
    ]
    states, _ = replay(facts)
    state = states[(TRIAL, pid)]

    text = encode_state(state)

    assert decode_state(text) == state
    assert encode_state(decode_state(text)) == text
    assert state.episodes and state.observations


def test_histories_are_pruned_by_clinical_time_past_window_plus_allowance() -> None:
    """Bounded history: an Hb older than 24 h + 7 d before the newest fact is dropped."""
    pid = unique("P")
    horizon, _ = retention(DEFAULT_CONFIG)
    old = lab_result(pid, "hb", 120.0, at=T0)
    kept = lab_result(pid, "hb", 118.0, at=T0 + horizon["hb"])
    newest = lab_result(pid, "hb", 119.0, at=T0 + horizon["hb"] + timedelta(seconds=1))

    states, _ = replay([enrolled(pid), old, kept, newest])

    assert [o.event_id for o in states[(TRIAL, pid)].series("hb")] == [
        kept.event_id,
        newest.event_id,
    ]
    assert horizon["hb"] == timedelta(hours=24) + timedelta(days=7)
    assert horizon["wh"] >= timedelta(days=14 + 7)


def test_late_fact_within_the_allowance_finds_its_window() -> None:
    """A fact 6 days late still pairs with the Hb taken 20 h before it (VB-02 fires)."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        lab_result(pid, "hb", 102.0, at=T0),
        lab_result(pid, "hb", 100.0, at=T0 + timedelta(days=6)),
        lab_result(
            pid, "hb", 71.0, at=hours_after(20), recorded_at=T0 + timedelta(days=6, hours=1)
        ),
    ]

    _, signals = replay(facts)

    assert [s.causation_id for s in fired(signals, "VB-02")] == [facts[3].event_id]


def test_protocol_procedures_and_aes_are_never_pruned() -> None:
    """UC-MSC/PE sessions and AEs stay (few per participant); transfusions age out."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        procedure(pid, Treatment.UC_MSC_INFUSION, at=T0),
        procedure(pid, Treatment.RBC_TRANSFUSION, at=T0),
        ae_reported(pid, term="Nausea"),
        lab_result(pid, "hb", 110.0, at=T0 + timedelta(days=60)),
    ]

    states, _ = replay(facts)
    state = states[(TRIAL, pid)]

    assert [p.treatment for p in state.procedures] == ["uc_msc_infusion"]
    assert [ae.ae_ref for ae in state.adverse_events] == ["AE-1"]


def test_corrected_lab_result_is_re_evaluated() -> None:
    """§0.2 amended results re-evaluate: a corrected Hb (90 -> 65 g/L) fires VB-04."""
    pid = unique("P")
    original = lab_result(pid, "hb", 90.0, at=T0)
    replacement = original.payload.model_dump(mode="json")
    replacement["result"] = {
        "value": 65.0,
        "unit": "g/L",
        "normalised_value": 65.0,
        "normalised_unit": "g/L",
    }
    correction = FactCorrected(
        **envelope(pid, at=hours_after(5)),
        payload={
            "supersedes_event_id": original.event_id,
            "reason": "wrong sample",
            "replacement": replacement,
        },
    )

    states, signals = replay([enrolled(pid), original, correction])

    # (Hb 90 and 65 g/L without a range are also CTCAE anaemia grades 2 and 3: LAB-*.)
    assert [
        (s.payload.rule_id, s.causation_id) for s in signals if s.payload.rule_id[:3] != "LAB"
    ] == [("VB-04", correction.event_id)]
    assert [(o.value, o.at) for o in states[(TRIAL, pid)].series("hb")] == [(65.0, T0)]


def test_retracted_lab_result_leaves_the_history() -> None:
    """A retraction (no replacement) removes the result from what the rules read."""
    pid = unique("P")
    original = lab_result(pid, "hb", 90.0, at=T0)
    retraction = FactCorrected(
        **envelope(pid), payload={"supersedes_event_id": original.event_id, "reason": "duplicate"}
    )

    states, _ = replay([enrolled(pid), original, retraction])

    assert states[(TRIAL, pid)].series("hb") == ()


def test_a_mistyped_future_date_does_not_prune_the_history() -> None:
    """The pruning clock never passes a fact's recording time: a year-2099 typo prunes nothing."""
    pid = unique("P")
    hb = lab_result(pid, "hb", 110.0, at=T0)
    typo = lab_result(pid, "hb", 108.0, at=T0.replace(year=2099), recorded_at=hours_after(1))

    states, _ = replay([enrolled(pid), hb, typo])

    assert [o.event_id for o in states[(TRIAL, pid)].series("hb")] == [hb.event_id, typo.event_id]
