"""IR-MSC-01..03, PE-01..03: UC-MSC infusion reactions, PE complications (RULES.md §4.4-4.5)."""

from __future__ import annotations

from datetime import timedelta

from schemas import Arm, Role, Treatment, Urgency
from services.rules.core.fold import replay

from .factories import (
    T0,
    ae_reported,
    enrolled,
    fired,
    hours_after,
    lab_result,
    procedure,
    rule_ids,
    unique,
    vitals,
)

MSC = Treatment.UC_MSC_INFUSION
PE = Treatment.PLASMA_EXCHANGE


def after(pid: str, treatment: Treatment, *facts: object, minutes: float | None = None) -> list:
    """Enrolment (arm D), a procedure at T0, then `facts`."""
    return [
        enrolled(pid, arm=Arm.UC_MSC_AND_PLASMA_EXCHANGE, at=T0 - timedelta(days=2)),
        procedure(pid, treatment, at=T0, minutes=minutes),
        *facts,
    ]


# --- IR-MSC-01 / 02 / 03 ---


def test_chills_grade_1_after_msc_is_ir_msc01_u1() -> None:
    """IR-MSC-01: Chills G1 in W_IR_MSC -> U1 to INV and SO, tagged with the infusion."""
    pid = unique("P")
    facts = after(
        pid, MSC, ae_reported(pid, term="Chills", grade=1, env={"at": hours_after(2)}), minutes=30
    )

    _, signals = replay(facts)

    payload = fired(signals, "IR-MSC-01")[0].payload
    assert (payload.urgency, payload.recipients) == (
        Urgency.U1,
        (Role.INVESTIGATOR, Role.SAFETY_OFFICER),
    )
    assert (payload.values["procedure_event_id"], payload.values["arm"]) == (
        str(facts[1].event_id),
        "D",
    )


def test_anaphylaxis_any_grade_or_grade_3_is_u0() -> None:
    """IR-MSC-01: anaphylaxis (any grade) or CTCAE grade >= 3 -> U0."""
    pid, graded = unique("P"), unique("P")

    _, anaphylaxis = replay(
        after(pid, MSC, ae_reported(pid, term="Anaphylaxis", grade=2, env={"at": hours_after(1)}))
    )
    _, severe = replay(
        after(
            graded,
            MSC,
            ae_reported(
                graded, term="Infusion-related reaction", grade=3, env={"at": hours_after(1)}
            ),
        )
    )

    assert [s.payload.urgency for s in fired(anaphylaxis, "IR-MSC-01")] == [Urgency.U0]
    assert [s.payload.urgency for s in fired(severe, "IR-MSC-01")] == [Urgency.U0]


def test_reaction_outside_w_ir_msc_is_not_ir_msc01() -> None:
    """IR-MSC-01: an urticaria starting 24 h + 1 min after the infusion end is outside W_IR_MSC."""
    pid = unique("P")
    onset = T0 + timedelta(minutes=30, hours=24, seconds=60)

    _, signals = replay(
        after(pid, MSC, ae_reported(pid, term="Urticaria", env={"at": onset}), minutes=30)
    )

    assert fired(signals, "IR-MSC-01") == []


def test_low_sbp_or_fall_of_40_after_msc_is_ir_msc02_u0_once() -> None:
    """IR-MSC-02: SBP fall >= 40 mmHg from the pre-infusion value in W_IR_MSC -> U0 to INV, once."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=T0 - timedelta(days=2)),
        vitals(pid, systolic_bp=135, env={"at": T0 - timedelta(hours=1)}),
        procedure(pid, MSC, at=T0, minutes=30),
        vitals(pid, systolic_bp=95, env={"at": hours_after(1)}),
        vitals(pid, systolic_bp=85, env={"at": hours_after(2)}),
    ]

    _, signals = replay(facts)

    ir = fired(signals, "IR-MSC-02")
    assert [(s.causation_id, s.payload.urgency, s.payload.recipients) for s in ir] == [
        (facts[3].event_id, Urgency.U0, (Role.INVESTIGATOR,))
    ]


def test_hypoxaemia_and_tachycardia_after_msc() -> None:
    """IR-MSC-02: SpO2 < 90 % or HR > 120/min in W_IR_MSC; SpO2 90 and HR 120 do not fire."""
    edge, low = unique("P"), unique("P")

    _, at_limits = replay(
        after(edge, MSC, vitals(edge, spo2=90, heart_rate=120, env={"at": hours_after(1)}))
    )
    _, hypoxic = replay(after(low, MSC, vitals(low, spo2=89, env={"at": hours_after(1)})))

    assert (rule_ids(at_limits), rule_ids(hypoxic)) == ([], ["IR-MSC-02"])


def test_thrombosis_within_7_days_of_msc_is_ir_msc03() -> None:
    """IR-MSC-03: a thromboembolic AE <= 7 days after a UC-MSC infusion -> U1."""
    pid = unique("P")

    _, signals = replay(
        after(
            pid, MSC, ae_reported(pid, term="Portal vein thrombosis", env={"at": hours_after(100)})
        )
    )

    assert [(s.payload.rule_id, s.payload.urgency) for s in signals] == [("IR-MSC-03", Urgency.U1)]


# --- PE-01 citrate hypocalcaemia ---


def test_vector_ica_1_05_lln_1_12_one_hour_after_pe_is_g1_u2() -> None:
    """Test vector §4.5: iCa 1.05 mmol/L (LLN 1.12) 1 h after PE -> PE-01 CTCAE G1, U2."""
    pid = unique("P")

    _, signals = replay(after(pid, PE, lab_result(pid, "ica", 1.05, low=1.12, at=hours_after(1))))

    # LAB-SHIFT also lists the new worst grade for the DSMB (U3): not this rule's concern.
    assert [
        (s.payload.rule_id, s.payload.urgency, s.payload.values["ctcae_grade"])
        for s in signals
        if s.payload.rule_id != "LAB-SHIFT"
    ] == [("PE-01", Urgency.U2, 1)]


def test_ica_grades_and_escalation() -> None:
    """PE-01: G2 (< 1.0) -> U1; G3 (< 0.9) -> U0; a repeat G2 after G3 does not re-fire."""
    pid = unique("P")
    facts = after(
        pid,
        PE,
        lab_result(pid, "ica", 0.95, low=1.12, at=hours_after(1)),
        lab_result(pid, "ica", 0.85, low=1.12, at=hours_after(2)),
        lab_result(pid, "ica", 0.95, low=1.12, at=hours_after(3)),
    )

    _, signals = replay(facts)

    assert [
        (s.payload.values["ctcae_grade"], s.payload.urgency) for s in fired(signals, "PE-01")
    ] == [
        (2, Urgency.U1),
        (3, Urgency.U0),
    ]


def test_ica_without_reference_range_uses_default_lln_and_window_is_pe_end_plus_6h() -> None:
    """PE-01: no LLN sent -> 1.12 assumed; W_IR_PE ends 6 h after the (assumed 3 h) session."""
    inside, outside = unique("P"), unique("P")

    _, within = replay(after(inside, PE, lab_result(inside, "ica", 1.1, at=hours_after(9))))
    _, beyond = replay(
        after(outside, PE, lab_result(outside, "ica", 1.1, at=hours_after(9 + 1 / 60)))
    )

    assert [s.payload.values["lln_assumed"] for s in within] == [True]
    assert beyond == ()


def test_paraesthesia_during_pe_is_pe01_u1() -> None:
    """PE-01: a paraesthesia AE in W_IR_PE (citrate toxicity symptom) -> U1."""
    pid = unique("P")

    _, signals = replay(
        after(pid, PE, ae_reported(pid, term="Paraesthesia", grade=1, env={"at": hours_after(1)}))
    )

    assert [(s.payload.rule_id, s.payload.urgency) for s in signals] == [("PE-01", Urgency.U1)]


# --- PE-02 hypotension, PE-03 plasma allergy ---


def test_hypotension_during_pe_is_u1_and_a_vasopressor_escalates_to_u0() -> None:
    """PE-02: SBP < 90 in W_IR_PE -> U1 to INV; a vasopressor started in the window -> U0."""
    pid = unique("P")
    facts = after(
        pid,
        PE,
        vitals(pid, systolic_bp=85, env={"at": hours_after(1)}),
        vitals(pid, mean_arterial_pressure=60, env={"at": hours_after(1.5)}),
        procedure(pid, Treatment.VASOPRESSOR, at=hours_after(2)),
    )

    _, signals = replay(facts)

    assert [(s.causation_id, s.payload.urgency) for s in fired(signals, "PE-02")] == [
        (facts[2].event_id, Urgency.U1),
        (facts[4].event_id, Urgency.U0),
    ]


def test_urticaria_after_pe_is_pe03_and_anaphylaxis_u0() -> None:
    """PE-03: urticaria G1 in W_IR_PE -> U1; anaphylaxis -> U0."""
    pid = unique("P")
    facts = after(
        pid,
        PE,
        ae_reported(pid, ae_ref="AE-1", term="Urticaria", grade=1, env={"at": hours_after(2)}),
        ae_reported(pid, ae_ref="AE-2", term="Anaphylaxis", grade=3, env={"at": hours_after(3)}),
    )

    _, signals = replay(facts)

    assert [s.payload.urgency for s in fired(signals, "PE-03")] == [Urgency.U1, Urgency.U0]
