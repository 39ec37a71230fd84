"""Corrections re-evaluate the rules; a signal that no longer holds is retracted (§0.2)."""

from __future__ import annotations

from typing import Any

from schemas import Role, SeriousnessCriterion, SignalRaised, SignalUpdated, Urgency
from services.rules.core.fold import replay
from services.rules.core.signals import derived_id

from .factories import (
    ae_payload,
    ae_reported,
    corrected,
    died,
    enrolled,
    hours_after,
    lab_result,
    unique,
)


def _hb_payload(value: float) -> dict[str, Any]:
    return lab_result("X", "hb", value).payload.model_dump(mode="json")


def _retractions(signals: tuple[SignalRaised | SignalUpdated, ...]) -> list[SignalUpdated]:
    # Hb without a range below 80 g/L is also CTCAE anaemia grade 3 (LAB-*, retracted alike);
    # these tests follow VB-04.
    return [
        s
        for s in signals
        if isinstance(s, SignalUpdated) and not s.payload.rule_id.startswith("LAB-")
    ]


def test_corrected_low_hb_retracts_vb04_at_the_same_urgency_and_recipients() -> None:
    """§0.2: Hb 65 g/L corrected to 95 retracts VB-04 (U1, investigator), naming the correction."""
    pid = unique("P")
    low = lab_result(pid, "hb", 65.0, at=hours_after(1))
    fix = corrected(pid, low.event_id, _hb_payload(95.0), at=hours_after(30))

    _, before = replay([enrolled(pid), low])
    _, signals = replay([enrolled(pid), low, fix])

    (vb04,) = [s for s in before if s.payload.rule_id == "VB-04"]
    (notice,) = _retractions(signals)
    assert notice.status == "retracted"
    assert notice.signal_id == vb04.event_id
    assert (notice.payload.rule_id, notice.payload.urgency) == ("VB-04", Urgency.U1)
    assert notice.payload.recipients == vb04.payload.recipients == (Role.INVESTIGATOR,)
    assert notice.causation_id == fix.event_id
    assert notice.payload.evidence_event_ids == (low.event_id, fix.event_id)
    assert notice.payload.values["correcting_event_id"] == str(fix.event_id)
    assert notice.event_id == derived_id("retracted", str(vb04.event_id), str(fix.event_id))
    assert _retractions(tuple(s for s in signals if s.causation_id == fix.event_id)) == [notice]


def test_corrected_value_that_still_fires_gives_no_duplicate_and_no_retraction() -> None:
    """§0.2: Hb 65 corrected to 68 still meets VB-04: nothing new is sent."""
    pid = unique("P")
    low = lab_result(pid, "hb", 65.0, at=hours_after(1))
    fix = corrected(pid, low.event_id, _hb_payload(68.0), at=hours_after(2))

    _, signals = replay([enrolled(pid), low, fix])

    assert [s for s in signals if s.causation_id == fix.event_id] == []


def test_second_correction_of_a_fact_still_finds_the_signal() -> None:
    """A signal that survived one correction is retracted when a second one undoes it."""
    pid = unique("P")
    low = lab_result(pid, "hb", 65.0, at=hours_after(1))
    first = corrected(pid, low.event_id, _hb_payload(68.0), at=hours_after(2))
    # Ingest makes every correction name the original fact (not the earlier correction).
    second = corrected(pid, low.event_id, _hb_payload(110.0), at=hours_after(3))

    _, signals = replay([enrolled(pid), low, first, second])

    (notice,) = _retractions(signals)
    assert notice.payload.rule_id == "VB-04"
    assert notice.causation_id == second.event_id


def test_major_drop_corrected_to_minor_retracts_vb02_and_raises_vb03() -> None:
    """VB-02 (Δ 31 g/L) corrected to Δ 25 no longer holds: retracted; VB-03 now fires."""
    pid = unique("P")
    first = lab_result(pid, "hb", 102.0, at=hours_after(0))
    second = lab_result(pid, "hb", 71.0, at=hours_after(20))
    fix = corrected(pid, second.event_id, _hb_payload(77.0), at=hours_after(21))

    _, signals = replay([enrolled(pid), first, second, fix])

    caused = [
        (type(s).__name__, s.payload.rule_id, s.payload.urgency)
        for s in signals
        if s.causation_id == fix.event_id
    ]
    assert caused == [("SignalUpdated", "VB-02", Urgency.U0), ("SignalRaised", "VB-03", Urgency.U1)]


def test_ae_corrected_to_not_serious_retracts_sae01() -> None:
    """An AE report corrected to carry no seriousness criterion retracts SAE-01 (U0, INV+SO)."""
    pid = unique("P")
    report = ae_reported(pid, ae_ref="AE-1", criteria=(SeriousnessCriterion.HOSPITALISATION,))
    fix = corrected(pid, report.event_id, ae_payload("AE-1"), at=hours_after(4))

    _, signals = replay([enrolled(pid), report, fix])

    (notice,) = _retractions(signals)
    assert notice.payload.rule_id == "SAE-01"
    assert notice.payload.urgency is Urgency.U0
    assert notice.payload.recipients == (Role.INVESTIGATOR, Role.SAFETY_OFFICER)


def test_retracted_ae_report_retracts_its_sae01_and_a_new_report_fires_again() -> None:
    """A retraction (no replacement) undoes SAE-01; the AE re-reported serious fires afresh."""
    pid = unique("P")
    serious = {"ae_ref": "AE-1", "criteria": (SeriousnessCriterion.HOSPITALISATION,)}
    report = ae_reported(pid, **serious)
    withdrawn = corrected(pid, report.event_id, None, reason="entered in error")
    again = ae_reported(pid, **serious, env={"at": hours_after(5)})

    _, signals = replay([enrolled(pid), report, withdrawn, again])

    assert [(type(s).__name__, s.payload.rule_id) for s in signals] == [
        ("SignalRaised", "SAE-01"),
        ("SignalUpdated", "SAE-01"),
        ("SignalRaised", "SAE-01"),
    ]
    assert _retractions(signals)[0].payload.values["correction_kind"] == "retraction"


def test_correction_of_an_unknown_fact_changes_nothing() -> None:
    """A correction naming a fact the rules never saw retracts nothing."""
    pid = unique("P")
    low = lab_result(pid, "hb", 65.0, at=hours_after(1))
    stray = corrected(pid, lab_result(pid, "hb", 1.0).event_id, _hb_payload(95.0))

    _, signals = replay([enrolled(pid), low, stray])

    assert _retractions(signals) == []


def test_late_correction_says_it_was_late_and_replays_identically() -> None:
    """A correction recorded days after its clinical time is flagged late; replay is stable."""
    pid = unique("P")
    low = lab_result(pid, "hb", 65.0, at=hours_after(1))
    fix = corrected(
        pid, low.event_id, _hb_payload(95.0), at=hours_after(2), recorded_at=hours_after(80)
    )
    history = [enrolled(pid), low, fix]

    _, first = replay(history)
    _, second = replay(history)

    (notice,) = _retractions(first)
    assert notice.payload.values["late"] is True
    assert [s.model_dump_json() for s in first] == [s.model_dump_json() for s in second]


def test_signal_raised_on_a_corrected_value_is_retracted_by_the_next_correction() -> None:
    """Hb 95 corrected to 65 fires VB-04; a second correction of the same fact retracts it."""
    pid = unique("P")
    result = lab_result(pid, "hb", 95.0, at=hours_after(1))
    first = corrected(pid, result.event_id, _hb_payload(65.0), at=hours_after(2))
    second = corrected(pid, result.event_id, _hb_payload(95.0), at=hours_after(3))

    _, signals = replay([enrolled(pid), result, first, second])

    assert [
        (type(s).__name__, s.payload.rule_id, s.causation_id)
        for s in signals
        if not s.payload.rule_id.startswith("LAB-")
    ] == [
        ("SignalRaised", "VB-04", first.event_id),
        ("SignalUpdated", "VB-04", second.event_id),
    ]


def test_death_recorded_in_error_retracts_sae03_to_the_same_people() -> None:
    """A retracted DeathRecorded retracts SAE-03 (U0 to INV, SO and the DSMB chair)."""
    pid = unique("P")
    death = died(pid, at=hours_after(5))
    withdrawn = corrected(pid, death.event_id, None, reason="wrong participant")

    _, signals = replay([enrolled(pid), death, withdrawn])

    (sae03,) = [s for s in signals if isinstance(s, SignalRaised)]
    (notice,) = _retractions(signals)
    assert (notice.signal_id, notice.payload.rule_id) == (sae03.event_id, "SAE-03")
    assert notice.payload.recipients == sae03.payload.recipients
    assert Role.DSMB_CHAIR in notice.payload.recipients
