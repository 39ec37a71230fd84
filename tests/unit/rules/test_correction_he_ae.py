"""Corrections of hepatic-encephalopathy AEs (HE-03 West Haven points; RULES.md §0.2, §2)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from schemas import ClinicalFact, SignalRaised, SignalUpdated, Urgency
from services.rules.core.engine import evaluate
from services.rules.core.fold import replay
from services.rules.core.state import ParticipantState

from .factories import (
    TRIAL,
    ae_payload,
    ae_reported,
    ae_updated,
    corrected,
    enrolled,
    hours_after,
    unique,
)

HE = "Hepatic encephalopathy"
ONSET = hours_after(2)
FIXED = hours_after(6)


def _replay(
    pid: str, *facts: ClinicalFact
) -> tuple[ParticipantState, tuple[SignalRaised | SignalUpdated, ...]]:
    states, signals = replay([enrolled(pid, at=hours_after(-240)), *facts])
    return states[(TRIAL, pid)], signals


def _he_report(pid: str, grade: int, **payload: Any) -> ClinicalFact:
    return ae_reported(pid, ae_ref="AE-1", term=HE, grade=grade, env={"at": ONSET}, **payload)


def _caused(
    signals: tuple[SignalRaised | SignalUpdated, ...], fact: ClinicalFact
) -> list[tuple[str, str, Urgency]]:
    return [
        (type(s).__name__, s.payload.rule_id, s.payload.urgency)
        for s in signals
        if s.causation_id == fact.event_id
    ]


def _wh(state: ParticipantState) -> list[tuple[float, object]]:
    return [(o.value, o.event_id) for o in state.series("wh")]


def test_he_ae_grade_corrected_up_updates_the_ae_and_replaces_its_west_haven_point() -> None:
    """§0.2: an HE AE grade 2 corrected to 3 updates the AE; WH 2 becomes WH 3; no SYS-01."""
    pid = unique("P")
    report = _he_report(pid, 2)
    fix = corrected(pid, report.event_id, ae_payload("AE-1", term=HE, grade=3), at=FIXED)

    state, signals = _replay(pid, report, fix)

    (ae,) = state.adverse_events
    assert (ae.ctcae_grade, ae.event_ids) == (3, (report.event_id, fix.event_id))
    assert _wh(state) == [(3.0, fix.event_id)]
    assert state.series("wh")[0].at == ONSET
    assert "SYS-01" not in [s.payload.rule_id for s in signals]


def test_he_ae_grade_corrected_up_keeps_he01_and_escalates_to_u0() -> None:
    """§0.2 re-fire on escalation: HE-01 U1 still holds (no retraction); HE-01 fires at U0."""
    pid = unique("P")
    report = _he_report(pid, 2)
    fix = corrected(pid, report.event_id, ae_payload("AE-1", term=HE, grade=3), at=FIXED)

    _, signals = _replay(pid, report, fix)

    assert _caused(signals, report) == [("SignalRaised", "HE-01", Urgency.U1)]
    assert _caused(signals, fix) == [("SignalRaised", "HE-01", Urgency.U0)]
    assert fix.event_id in signals[-1].payload.evidence_event_ids


def test_he_ae_grade_corrected_down_retracts_u0_and_raises_u1() -> None:
    """§0.2: grade 3 corrected to 2 retracts HE-01 U0 at U0; HE-01 U1 is raised afresh."""
    pid = unique("P")
    report = _he_report(pid, 3)
    fix = corrected(pid, report.event_id, ae_payload("AE-1", term=HE, grade=2), at=FIXED)

    state, signals = _replay(pid, report, fix)

    assert _caused(signals, fix) == [
        ("SignalUpdated", "HE-01", Urgency.U0),
        ("SignalRaised", "HE-01", Urgency.U1),
    ]
    assert _wh(state) == [(2.0, fix.event_id)]


def test_he_ae_corrected_to_a_non_he_term_drops_its_point_and_retracts_he01() -> None:
    """HE-03 no longer applies to a non-HE term: the WH point goes and HE-01 is retracted."""
    pid = unique("P")
    report = _he_report(pid, 2)
    fix = corrected(pid, report.event_id, ae_payload("AE-1", term="Sepsis", grade=2), at=FIXED)

    state, signals = _replay(pid, report, fix)

    assert [ae.term for ae in state.adverse_events] == ["Sepsis"]
    assert _wh(state) == []
    assert _caused(signals, fix) == [("SignalUpdated", "HE-01", Urgency.U1)]


def test_retracted_he_ae_report_removes_the_ae_and_its_point() -> None:
    """A retraction of an HE AE's one report removes the AE and its WH point; HE-01 retracted."""
    pid = unique("P")
    report = _he_report(pid, 2)
    withdrawn = corrected(pid, report.event_id, None, reason="entered in error", at=FIXED)

    state, signals = _replay(pid, report, withdrawn)

    assert (state.adverse_events, _wh(state)) == ((), [])
    assert _caused(signals, withdrawn) == [("SignalUpdated", "HE-01", Urgency.U1)]


def test_second_correction_of_an_he_ae_replaces_the_first_ones_point() -> None:
    """Ingest names the original in every correction: the second one replaces the first's point."""
    pid = unique("P")
    report = _he_report(pid, 2)
    first = corrected(pid, report.event_id, ae_payload("AE-1", term=HE, grade=3), at=FIXED)
    second = corrected(
        pid, report.event_id, ae_payload("AE-1", term=HE, grade=1), at=FIXED + timedelta(hours=1)
    )

    state, signals = _replay(pid, report, first, second)

    assert state.adverse_events[0].ctcae_grade == 1
    assert _wh(state) == [(1.0, second.event_id)]
    assert sorted(r for _, r, _ in _caused(signals, second)) == ["HE-01", "HE-01"]
    assert {t for t, _, _ in _caused(signals, second)} == {"SignalUpdated"}


def test_corrected_he_update_rising_no_more_drops_its_point_and_retracts_he02() -> None:
    """An update 2 -> 3 (HE-02) corrected to 2 no longer rises: point gone, HE-02 retracted."""
    pid = unique("P")
    report = _he_report(pid, 2)
    update = ae_updated(pid, ae_ref="AE-1", term=HE, grade=3, env={"at": hours_after(3)})
    fix = corrected(pid, update.event_id, ae_payload("AE-1", term=HE, grade=2), at=FIXED)

    state, signals = _replay(pid, report, update, fix)

    assert state.adverse_events[0].ctcae_grade == 2
    assert _wh(state) == [(2.0, report.event_id)]
    assert _caused(signals, update) == [("SignalRaised", "HE-02", Urgency.U0)]
    assert _caused(signals, fix) == [("SignalUpdated", "HE-02", Urgency.U0)]


def test_corrected_he_update_without_grade_change_keeps_its_point() -> None:
    """A correction of an update's other fields keeps its WH point (under the correction's id)."""
    pid = unique("P")
    report = _he_report(pid, 2)
    update = ae_updated(pid, ae_ref="AE-1", term=HE, grade=3, env={"at": hours_after(3)})
    fix = corrected(
        pid, update.event_id, ae_payload("AE-1", term=HE, grade=3, llt="10014625"), at=FIXED
    )

    state, signals = _replay(pid, report, update, fix)

    assert _wh(state) == [(2.0, report.event_id), (3.0, fix.event_id)]
    assert _caused(signals, fix) == []


def test_correction_of_a_superseded_he_report_changes_nothing() -> None:
    """Only an AE's latest report is corrected: correcting the report after an update is a no-op."""
    pid = unique("P")
    report = _he_report(pid, 2)
    update = ae_updated(pid, ae_ref="AE-1", term=HE, grade=3, env={"at": hours_after(3)})
    fix = corrected(pid, report.event_id, ae_payload("AE-1", term=HE, grade=1), at=FIXED)
    facts = [enrolled(pid, at=hours_after(-240)), report, update]
    before, _ = replay(facts)
    prior = before[(TRIAL, pid)]

    after, signals = evaluate(prior, fix)

    assert signals == ()
    assert (after.adverse_events, after.observations) == (prior.adverse_events, prior.observations)


def test_correction_of_a_non_he_ae_is_unchanged() -> None:
    """An AE with no WH point is corrected as before: values replaced, no point, no signal."""
    pid = unique("P")
    report = ae_reported(pid, ae_ref="AE-1", term="Sepsis", grade=2, env={"at": ONSET})
    fix = corrected(pid, report.event_id, ae_payload("AE-1", term="Sepsis", grade=3), at=FIXED)

    state, signals = _replay(pid, report, fix)

    assert [(ae.term, ae.ctcae_grade) for ae in state.adverse_events] == [("Sepsis", 3)]
    assert (_wh(state), _caused(signals, fix)) == ([], [])


def test_non_he_ae_corrected_to_he_becomes_a_west_haven_point() -> None:
    """HE-03: an AE corrected to hepatic encephalopathy grade 2 is a WH point and fires HE-01."""
    pid = unique("P")
    report = ae_reported(pid, ae_ref="AE-1", term="Confusion", grade=2, env={"at": ONSET})
    fix = corrected(pid, report.event_id, ae_payload("AE-1", term=HE, grade=2), at=FIXED)

    state, signals = _replay(pid, report, fix)

    assert _wh(state) == [(2.0, fix.event_id)]
    assert _caused(signals, fix) == [("SignalRaised", "HE-01", Urgency.U1)]


def test_retraction_of_an_he_update_changes_nothing() -> None:
    """The AE before an update is not kept: retracting the update keeps the AE and its point."""
    pid = unique("P")
    report = _he_report(pid, 2)
    update = ae_updated(pid, ae_ref="AE-1", term=HE, grade=3, env={"at": hours_after(3)})
    withdrawn = corrected(pid, update.event_id, None, at=FIXED)
    before, _ = replay([enrolled(pid, at=hours_after(-240)), report, update])
    prior = before[(TRIAL, pid)]

    after, signals = evaluate(prior, withdrawn)

    assert signals == ()
    assert (after.adverse_events, after.observations) == (prior.adverse_events, prior.observations)
