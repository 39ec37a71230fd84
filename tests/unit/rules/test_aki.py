"""AKI-01/02/03: KDIGO 2012 / ICA 2015 staging of the creatinine history (RULES.md §6)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from schemas import LabResultRecorded, Role, Treatment, Urgency
from services.rules.core.fold import replay
from services.rules.core.rules._aki import HRS_NOTE

from .factories import T0, enrolled, envelope, fired, hours_after, procedure, unique

ENROLLED = T0 - timedelta(days=1)
AKI = ("AKI-01", "AKI-02", "AKI-03")


def creatinine(
    pid: str, umol_l: float, at: datetime, *, loinc: str = "14682-9", **env: Any
) -> LabResultRecorded:
    """A serum creatinine as ingest publishes it (normalised to µmol/L)."""
    raw = (
        {"value": umol_l, "unit": "umol/L"}
        if loinc == "14682-9"
        else {"value": umol_l / 88.4, "unit": "mg/dL"}
    )
    payload = {
        "loinc": loinc,
        "result": {**raw, "normalised_value": umol_l, "normalised_unit": "umol/L"},
    }
    return LabResultRecorded(**envelope(pid, at=at, **env), payload=payload)


def aki_signals(facts: list) -> list:
    _, signals = replay(facts)
    return [s for s in signals if s.payload.rule_id in AKI]


def test_published_vector_70_72_to_97_24_in_36_h_is_aki01_stage_1_u1() -> None:
    """RULES.md §6 vector: 70.72 -> 97.24 µmol/L in 36 h (Δ 26.52) is AKI-01, stage 1, U1."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        creatinine(pid, 70.72, T0),
        creatinine(pid, 97.24, hours_after(36)),
    ]

    signals = aki_signals(facts)

    assert [s.payload.rule_id for s in signals] == ["AKI-01"]
    s = signals[0]
    assert (s.payload.urgency, s.payload.recipients) == (Urgency.U1, (Role.INVESTIGATOR,))
    assert s.payload.values["kdigo_stage"] == 1
    assert s.payload.values["ica_stage"] == "1A"
    assert s.payload.values["absolute_rise_umol_l"] == 26.52
    assert s.payload.values["ratio"] == 1.375


def test_conventional_unit_code_2160_0_is_read_normalised() -> None:
    """Creatinine LOINC 2160-0 (mg/dL) is staged on its normalised µmol/L value."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        creatinine(pid, 70.72, T0, loinc="2160-0"),
        creatinine(pid, 97.24, hours_after(36), loinc="2160-0"),
    ]

    assert [s.payload.rule_id for s in aki_signals(facts)] == ["AKI-01"]


def test_rise_just_below_26_5_does_not_fire() -> None:
    """Boundary: a 26.49 µmol/L rise in 48 h (ratio < 1.5) is not AKI."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        creatinine(pid, 70.72, T0),
        creatinine(pid, 97.21, hours_after(36)),
    ]

    assert aki_signals(facts) == []


def test_absolute_window_is_closed_at_48_h() -> None:
    """Boundary: the earlier value exactly 48 h before counts; 48 h + 1 min does not."""
    within, beyond = unique("P"), unique("P")

    at_48 = aki_signals(
        [enrolled(within, at=ENROLLED), creatinine(within, 70.72, T0),
         creatinine(within, 97.24, hours_after(48))]
    )  # fmt: skip
    after_48 = aki_signals(
        [enrolled(beyond, at=ENROLLED), creatinine(beyond, 70.72, T0),
         creatinine(beyond, 97.24, hours_after(48) + timedelta(minutes=1))]
    )  # fmt: skip

    assert ([s.payload.rule_id for s in at_48], after_48) == (["AKI-01"], [])


def test_ratio_1_5_to_the_7_day_baseline_is_aki02() -> None:
    """AKI-02: sCr / lowest sCr in the prior 7 days >= 1.5 (no 48-h rise) is stage 1, U1."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        creatinine(pid, 60.0, T0),
        creatinine(pid, 90.0, hours_after(24 * 5)),
    ]

    signals = aki_signals(facts)

    assert [s.payload.rule_id for s in signals] == ["AKI-02"]
    assert signals[0].payload.values["criteria"] == "ratio_7d"
    assert signals[0].payload.urgency is Urgency.U1


def test_stage_2_is_aki03_u1_with_the_hrs_work_up_note() -> None:
    """AKI-03: ratio 2.0-2.9 is stage 2, U1 to the investigator, with the HRS-AKI note."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        creatinine(pid, 60.0, T0),
        creatinine(pid, 120.0, hours_after(24 * 3)),
    ]

    signals = aki_signals(facts)

    assert [s.payload.rule_id for s in signals] == ["AKI-03"]
    s = signals[0]
    assert (s.payload.values["kdigo_stage"], s.payload.values["note"]) == (2, HRS_NOTE)
    assert (s.payload.urgency, s.payload.recipients) == (Urgency.U1, (Role.INVESTIGATOR,))


def test_stage_3_is_aki03_u0_to_investigator_and_safety_officer() -> None:
    """AKI-03: ratio >= 3.0 is stage 3, U0 to investigator and safety officer."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        creatinine(pid, 60.0, T0),
        creatinine(pid, 180.0, hours_after(24 * 3)),
    ]

    signals = aki_signals(facts)

    assert [s.payload.values["kdigo_stage"] for s in signals] == [3]
    assert (signals[0].payload.urgency, signals[0].payload.recipients) == (
        Urgency.U0,
        (Role.INVESTIGATOR, Role.SAFETY_OFFICER),
    )


def test_renal_replacement_started_is_stage_3_u0() -> None:
    """AKI-03: renal replacement therapy started is stage 3, even with no creatinine on file."""
    pid = unique("P")
    facts = [enrolled(pid, at=ENROLLED), procedure(pid, Treatment.RENAL_REPLACEMENT, at=T0)]

    signals = aki_signals(facts)

    assert [(s.payload.rule_id, s.payload.urgency) for s in signals] == [("AKI-03", Urgency.U0)]
    assert signals[0].payload.values["criteria"] == "rrt"


def test_fires_again_only_when_the_stage_escalates() -> None:
    """RULES.md §0.2: a persisting stage 1 does not re-fire; stage 2 then stage 3 do."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        creatinine(pid, 70.72, T0),
        creatinine(pid, 97.24, hours_after(36)),
        creatinine(pid, 100.0, hours_after(40)),
        creatinine(pid, 150.0, hours_after(60)),
        creatinine(pid, 152.0, hours_after(62)),
        creatinine(pid, 220.0, hours_after(70)),
    ]

    signals = aki_signals(facts)

    assert [(s.payload.rule_id, s.payload.values["kdigo_stage"]) for s in signals] == [
        ("AKI-01", 1),
        ("AKI-03", 2),
        ("AKI-03", 3),
    ]


def test_results_before_randomisation_do_not_fire() -> None:
    """Only results at or after randomisation are assessed."""
    pid = unique("P")
    facts = [
        creatinine(pid, 70.72, T0 - timedelta(days=3)),
        creatinine(pid, 150.0, T0 - timedelta(days=2)),
        enrolled(pid, at=ENROLLED),
    ]

    assert aki_signals(facts) == []


def test_late_result_is_flagged_and_versioned() -> None:
    """A result recorded > 24 h after collection carries late=True and the config version."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        creatinine(pid, 70.72, T0),
        creatinine(pid, 97.24, hours_after(36), recorded_at=hours_after(72)),
    ]

    (signal,) = aki_signals(facts)

    assert signal.payload.values["late"] is True
    assert signal.payload.values["config_version"] == "NCT01724398.v1"


def test_signals_cite_the_staged_result() -> None:
    """The staged creatinine is the evidence and trigger of the signal."""
    pid = unique("P")
    later = creatinine(pid, 97.24, hours_after(36))

    (signal,) = aki_signals([enrolled(pid, at=ENROLLED), creatinine(pid, 70.72, T0), later])

    assert signal.payload.evidence_event_ids == (later.event_id,)
    assert fired([signal], "AKI-01") == [signal]
