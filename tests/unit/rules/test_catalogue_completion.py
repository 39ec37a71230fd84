"""The rules completing the catalogue: PE-04/05, AKI-04, LAB-SHIFT, STOP-03, STOP-04, HE-05."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from schemas import (
    AdverseEventReported,
    Causality,
    Expectedness,
    Role,
    SeriousnessCriterion,
    Treatment,
    Urgency,
)
from services.rules.core.config import AkiConfig, TrialConfig
from services.rules.core.fold import replay

from .factories import (
    T0,
    ae_payload,
    died,
    enrolled,
    envelope,
    fired,
    hours_after,
    lab_result,
    procedure,
    unique,
    vitals,
    west_haven,
)
from .test_aki import creatinine

PE = Treatment.PLASMA_EXCHANGE
MSC = Treatment.UC_MSC_INFUSION
INV_SO = (Role.INVESTIGATOR, Role.SAFETY_OFFICER)
ENROLLED = T0 - timedelta(days=1)


def ae(pid: str, term: str, at: Any, **payload: Any) -> AdverseEventReported:
    """An AE report with onset `at`; `pe_related` sets the causality to plasma exchange."""
    pe_related = payload.pop("pe_related", None)
    body = ae_payload(unique("AE"), term=term, **payload)
    if pe_related is not None:
        body["relatedness_plasma_exchange"] = pe_related
    return AdverseEventReported(**envelope(pid, at=at), payload=body)


# --- PE-04 transfusion-related lung injury ---


def test_hypoxia_within_6_h_of_the_end_of_pe_is_pe04_u0() -> None:
    """PE-04: 'Hypoxia' 5 h after a 3 h exchange ended (within end + 6 h) -> U0, INV + SO."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        procedure(pid, PE, minutes=180),
        ae(pid, "Hypoxia", hours_after(8)),
    ]

    _, signals = replay(facts)

    (pe04,) = fired(signals, "PE-04")
    assert (pe04.payload.urgency, pe04.payload.recipients) == (Urgency.U0, INV_SO)


def test_respiratory_distress_after_the_6_h_window_is_not_pe04() -> None:
    """PE-04: respiratory distress 6 h 1 min after the exchange ended is outside the window."""
    pid = unique("P")
    late = hours_after(9) + timedelta(minutes=1)
    facts = [
        enrolled(pid, at=ENROLLED),
        procedure(pid, PE, minutes=180),
        ae(pid, "Respiratory distress", late),
    ]

    _, signals = replay(facts)

    assert fired(signals, "PE-04") == []


# --- PE-05 catheter complications ---


def test_catheter_thrombosis_after_pe_is_pe05_u1() -> None:
    """PE-05: a catheter-related thrombosis 2 days after PE -> U1 to investigator and SO."""
    pid = unique("P")
    facts = [enrolled(pid, at=ENROLLED), procedure(pid, PE, minutes=180),
             ae(pid, "Catheter related thrombosis", hours_after(48))]  # fmt: skip

    _, signals = replay(facts)

    (pe05,) = fired(signals, "PE-05")
    assert (pe05.payload.urgency, pe05.payload.recipients) == (Urgency.U1, INV_SO)
    assert pe05.payload.values["complication"] == "thrombosis"


def test_access_site_bleeding_points_to_the_hb_rules_and_infection_is_inf08s() -> None:
    """PE-05: access-site haemorrhage names VB-03/04; a catheter infection is not PE-05."""
    pid = unique("P")
    facts = [enrolled(pid, at=ENROLLED), procedure(pid, PE, minutes=180),
             ae(pid, "Catheter site haemorrhage", hours_after(4)),
             ae(pid, "Catheter related infection", hours_after(5))]  # fmt: skip

    _, signals = replay(facts)

    (pe05,) = fired(signals, "PE-05")
    assert pe05.payload.values["complication"] == "bleeding"
    assert "VB-03/VB-04" in pe05.payload.reason
    assert len(fired(signals, "INF-08")) == 1


def test_catheter_thrombosis_without_a_pe_is_not_pe05() -> None:
    """PE-05 needs a plasma exchange in the 72 h before onset."""
    pid = unique("P")

    _, signals = replay([enrolled(pid, at=ENROLLED), ae(pid, "Catheter related thrombosis", T0)])

    assert fired(signals, "PE-05") == []


# --- AKI-04 possible HRS-AKI ---


def _stage_2_for(pid: str, hours: float) -> list[Any]:
    """Creatinine doubling from 70 µmol/L and staying there for `hours`."""
    return [
        enrolled(pid, at=ENROLLED),
        creatinine(pid, 70.0, T0),
        creatinine(pid, 145.0, hours_after(24)),
        creatinine(pid, 150.0, hours_after(24 + hours)),
    ]


def test_stage_2_persisting_48_h_without_vasopressor_is_possible_hrs_aki() -> None:
    """AKI-04: ICA stage >= 2 for 48 h, no vasopressor -> U1 'investigator to confirm'."""
    pid = unique("P")

    _, signals = replay(_stage_2_for(pid, 48))

    (aki04,) = fired(signals, "AKI-04")
    assert (aki04.payload.urgency, aki04.payload.recipients) == (Urgency.U1, INV_SO)
    assert aki04.payload.values["persisting_hours"] == 48.0
    assert "investigator to confirm" in aki04.payload.reason


def test_stage_2_for_less_than_48_h_or_with_a_vasopressor_is_not_aki04() -> None:
    """AKI-04: 47 h is too short; a vasopressor (shock) known in the period excludes HRS-AKI."""
    short, shocked = unique("P"), unique("P")
    vasopressor = procedure(shocked, Treatment.VASOPRESSOR, at=hours_after(30))
    *history, completing = _stage_2_for(shocked, 48)

    _, short_signals = replay(_stage_2_for(short, 47))
    _, shocked_signals = replay([*history, vasopressor, completing])

    assert fired(short_signals, "AKI-04") == []
    assert fired(shocked_signals, "AKI-04") == []


def test_hrs_persistence_window_is_configuration() -> None:
    """AKI-04's 48 h is `aki.hrs_persist_hours` [DC]: 24 h makes a 30 h run fire."""
    pid = unique("P")
    config = TrialConfig(aki=AkiConfig(hrs_persist_hours=24.0))

    _, signals = replay(_stage_2_for(pid, 30), config)

    assert len(fired(signals, "AKI-04")) == 1


# --- LAB-SHIFT worst post-baseline grade ---


def test_lab_shift_lists_each_new_worst_grade_for_the_dsmb_only() -> None:
    """LAB-SHIFT: platelets grade 1 then 3 then 2 -> U3 for grades 1 and 3 only (worst so far)."""
    pid = unique("P")
    facts = [enrolled(pid, at=ENROLLED)] + [
        lab_result(pid, "platelets", value, low=125.0, at=hours_after(i))
        for i, value in enumerate((100.0, 40.0, 60.0))
    ]

    _, signals = replay(facts)

    shifts = fired(signals, "LAB-SHIFT")
    assert [s.payload.values["worst_grade"] for s in shifts] == [1, 3]
    assert {(s.payload.urgency, s.payload.recipients) for s in shifts} == {
        (Urgency.U3, (Role.DSMB_CHAIR,))
    }


def test_lab_shift_does_not_depend_on_arrival_order() -> None:
    """LAB-SHIFT: the grade 3 result arriving before the grade 1 one leaves only grade 3."""
    pid = unique("P")
    results = [
        lab_result(pid, "platelets", value, low=125.0, at=hours_after(i))
        for i, value in enumerate((100.0, 40.0))
    ]

    _, signals = replay([enrolled(pid, at=ENROLLED), *reversed(results)])

    assert [s.payload.values["worst_grade"] for s in fired(signals, "LAB-SHIFT")] == [3]


# --- STOP-03 sentinel pause ---


def test_related_grade_4_within_7_days_of_pe_pauses_the_arm() -> None:
    """STOP-03: grade 4, possibly related to PE, 6 days after PE -> U0 to INV, SO, DSMB chair."""
    pid = unique("P")
    facts = [enrolled(pid, at=ENROLLED), procedure(pid, PE),
             ae(pid, "Hepatic failure", hours_after(24 * 6), grade=4,
                pe_related=Causality.POSSIBLE)]  # fmt: skip

    _, signals = replay(facts)

    (stop,) = fired(signals, "STOP-03")
    assert stop.payload.urgency is Urgency.U0
    assert stop.payload.recipients == (Role.INVESTIGATOR, Role.SAFETY_OFFICER, Role.DSMB_CHAIR)
    assert stop.payload.values["procedure"] == PE.value


def test_unrelated_or_late_or_grade_3_events_do_not_pause() -> None:
    """STOP-03 needs grade >= 4, causality >= possible to that procedure, and <= 7 days."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        procedure(pid, MSC),
        ae(pid, "Hepatic failure", hours_after(24), grade=4, relatedness=Causality.UNLIKELY),
        ae(pid, "Sepsis", hours_after(24 * 7 + 1), grade=4, relatedness=Causality.PROBABLE),
        ae(pid, "Pneumonia", hours_after(24), grade=3, relatedness=Causality.DEFINITE),
        ae(pid, "Sepsis", hours_after(30), grade=4, pe_related=Causality.DEFINITE),
    ]

    _, signals = replay(facts)

    assert fired(signals, "STOP-03") == []


def test_death_naming_a_related_ae_pauses_once() -> None:
    """STOP-03 death route: a death naming an AE related to UC-MSC, 3 days after infusion."""
    pid = unique("P")
    related = ae(pid, "Pneumonia", hours_after(24), grade=3, relatedness=Causality.PROBABLE)
    facts = [
        enrolled(pid, at=ENROLLED),
        procedure(pid, MSC),
        related,
        died(pid, related_ae_ref=related.payload.ae_ref, at=hours_after(72)),
        died(pid, related_ae_ref=related.payload.ae_ref, at=hours_after(73)),
    ]

    _, signals = replay(facts)

    (stop,) = fired(signals, "STOP-03")
    assert stop.payload.values["sentinel"] == "death"


# --- STOP-04 per-SUSAR notice to the DSMB chair ---


def test_each_susar_reaches_the_dsmb_chair_within_24_h() -> None:
    """STOP-04: the SAE-04 signal pages the DSMB chair (U0) and names the 24 h chair deadline."""
    pid = unique("P")
    report = ae(pid, "Sepsis", T0, criteria=(SeriousnessCriterion.HOSPITALISATION,),
                relatedness=Causality.POSSIBLE, expectedness=Expectedness.UNEXPECTED,
                awareness_at=T0)  # fmt: skip

    _, signals = replay([enrolled(pid, at=ENROLLED), report])

    (susar,) = fired(signals, "SAE-04")
    assert Role.DSMB_CHAIR in susar.payload.recipients
    assert susar.payload.urgency is Urgency.U0
    assert susar.payload.values["dsmb_chair_notice"] == "STOP-04"
    assert susar.payload.values["dsmb_chair_due"] == (T0 + timedelta(hours=24)).isoformat()


# --- HE-05 precipitants: AKI ---


def test_aki_within_72_h_is_named_as_an_he_precipitant() -> None:
    """HE-05: an AKI alert 24 h before new overt HE is listed among the precipitants."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        creatinine(pid, 70.72, T0),
        creatinine(pid, 97.24, hours_after(36)),
        west_haven(pid, 2, at=hours_after(60)),
    ]

    _, signals = replay(facts)

    (he01,) = fired(signals, "HE-01")
    assert "AKI" in str(he01.payload.values["precipitants"])


# --- AKI-05 urine output ---


def _hourly_urine(pid: str, values: list[float], start: float = 0.0) -> list[Any]:
    return [
        vitals(pid, env={"at": hours_after(start + i)}, urine_output=value)
        for i, value in enumerate(values)
    ]


def test_urine_output_below_0_5_for_6_consecutive_hours_is_aki05() -> None:
    """AKI-05 (KDIGO): seven hourly values < 0.5 mL/kg/h spanning 6 h -> U1, investigator."""
    pid = unique("P")

    _, signals = replay([enrolled(pid, at=ENROLLED), *_hourly_urine(pid, [0.4] * 7)])

    (aki05,) = fired(signals, "AKI-05")
    assert (aki05.payload.urgency, aki05.payload.recipients) == (Urgency.U1, (Role.INVESTIGATOR,))
    assert aki05.payload.values["hours_low"] == 6.0


def test_five_hours_low_or_a_normal_value_or_a_gap_breaks_the_run() -> None:
    """AKI-05: 5 h low; a 0.5 value in the run; two hours without a value: no signal."""
    short, broken, gap = unique("P"), unique("P"), unique("P")
    facts = [
        *_hourly_urine(short, [0.4] * 6),
        *_hourly_urine(broken, [0.4, 0.4, 0.4, 0.5, 0.4, 0.4, 0.4]),
        *_hourly_urine(gap, [0.4] * 3),
        *_hourly_urine(gap, [0.4] * 3, start=5.0),
    ]

    _, signals = replay(facts)

    assert fired(signals, "AKI-05") == []


def test_urine_output_in_ml_per_hour_is_refused_at_ingest() -> None:
    """Ingest refuses urine output without the body weight (mL/h), naming the field."""
    from services.ingest.core.accept import Rejection, accept

    item = {
        "event_type": "vital_signs_recorded",
        "trial_id": "NCT01724398",
        "site_id": "S01",
        "participant_id": "P-001",
        "occurred_at": "2024-03-01T08:00:00Z",
        "source": "icu",
        "source_ref": unique("uo"),
        "payload": {"observations": {"urine_output": {"value": 30, "unit": "mL/h"}}},
    }

    result = accept(item, recorded_at=T0, actor="tester")

    assert isinstance(result, Rejection)
    assert [e.field for e in result.errors] == ["payload.observations.urine_output.unit"]
