"""INF-01..08: infection after UC-MSC or PE (RULES.md §4.1-4.3; CTCAE v5, SIRS, Sepsis-3)."""

from __future__ import annotations

from datetime import timedelta

from schemas import Role, SeriousnessCriterion, Treatment, Urgency
from services.rules.core.fold import replay

from .factories import (
    T0,
    ae_reported,
    ae_updated,
    enrolled,
    fired,
    hours_after,
    lab_result,
    procedure,
    rule_ids,
    unique,
    vitals,
    west_haven,
)

MSC = Treatment.UC_MSC_INFUSION
PE = Treatment.PLASMA_EXCHANGE


def with_msc(pid: str, *facts: object) -> list:
    """Enrolment and a 30-min UC-MSC infusion starting at T0, then `facts`."""
    return [
        enrolled(pid, at=T0 - timedelta(days=3)),
        procedure(pid, MSC, at=T0, minutes=30),
        *facts,
    ]


# --- INF-01 fever ---


def test_vector_38_0_three_hours_after_msc_is_post_msc_fever_u1_and_not_sirs() -> None:
    """Test vector §4.3: T 38.0 °C 3 h after MSC -> INF-01 U1 'post-MSC fever'; no SIRS temp."""
    pid = unique("P")
    facts = with_msc(pid, vitals(pid, temperature=38.0, heart_rate=95, env={"at": hours_after(3)}))

    _, signals = replay(facts)

    assert rule_ids(signals) == ["INF-01"]
    payload = signals[0].payload
    assert (payload.urgency, payload.values["tag"], payload.values["ctcae_fever_grade"]) == (
        Urgency.U1,
        "post-MSC fever",
        1,
    )
    assert payload.values["procedure_event_id"] == str(facts[1].event_id)


def test_fever_outside_procedure_window_is_u2() -> None:
    """INF-01: a fever >= 38.0 °C outside W_IR_MSC is U2 (digest)."""
    pid = unique("P")

    _, signals = replay([enrolled(pid), vitals(pid, temperature=38.5, env={"at": T0})])

    assert [(s.payload.rule_id, s.payload.urgency) for s in signals] == [("INF-01", Urgency.U2)]


def test_temperature_below_38_is_not_fever() -> None:
    """INF-01 boundary: 37.9 °C is not a fever."""
    pid = unique("P")

    _, signals = replay(with_msc(pid, vitals(pid, temperature=37.9, env={"at": hours_after(1)})))

    assert signals == ()


def test_fever_above_40_is_u0_even_inside_the_window() -> None:
    """INF-01: > 40.0 °C is U0 (CTCAE G3), still tagged post-MSC; 40.0 °C is G2."""
    pid, edge = unique("P"), unique("P")

    _, hot = replay(with_msc(pid, vitals(pid, temperature=40.1, env={"at": hours_after(2)})))
    _, at_forty = replay([enrolled(edge), vitals(edge, temperature=40.0, env={"at": T0})])

    assert [(s.payload.urgency, s.payload.values["tag"]) for s in hot] == [
        (Urgency.U0, "post-MSC fever")
    ]
    assert [(s.payload.urgency, s.payload.values["ctcae_fever_grade"]) for s in at_forty] == [
        (Urgency.U2, 2)
    ]


def test_w_ir_msc_ends_24h_after_infusion_end() -> None:
    """W_IR_MSC = [start, end + 24 h] closed: end + 24 h is U1, end + 24 h + 1 min is U2."""
    inside, outside = unique("P"), unique("P")
    end = T0 + timedelta(minutes=30)

    _, at_edge = replay(
        with_msc(inside, vitals(inside, temperature=38.2, env={"at": end + timedelta(hours=24)}))
    )
    _, after = replay(
        with_msc(
            outside,
            vitals(outside, temperature=38.2, env={"at": end + timedelta(hours=24, minutes=1)}),
        )
    )

    assert [s.payload.urgency for s in at_edge] == [Urgency.U1]
    assert [s.payload.urgency for s in after] == [Urgency.U2]


def test_persistent_fever_fires_once_and_escalation_fires_again() -> None:
    """§0.2: fever every 4 h is one episode; a rise above 40 °C escalates to U0."""
    pid = unique("P")
    readings = [38.4, 38.6, 38.3, 40.2, 40.3]
    facts = [enrolled(pid)] + [
        vitals(pid, temperature=t, env={"at": hours_after(4 * i)}) for i, t in enumerate(readings)
    ]

    _, signals = replay(facts)

    assert [s.payload.urgency for s in fired(signals, "INF-01")] == [Urgency.U2, Urgency.U0]


def test_procalcitonin_labels_fever_infection_likely() -> None:
    """INF-06: PCT >= 0.5 ng/mL within 24 h annotates INF-01 'infection likely' (no signal)."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        lab_result(pid, "pct", 0.8, at=T0 - timedelta(hours=6)),
        vitals(pid, temperature=38.5, env={"at": T0}),
    ]

    _, signals = replay(facts)

    assert rule_ids(signals) == ["INF-01"]
    assert (
        signals[0].payload.values["infection_likely"],
        signals[0].payload.values["pct_ng_ml"],
    ) == (True, 0.8)


def test_crp_doubling_labels_fever_infection_likely() -> None:
    """INF-06: CRP >= 2x the previous value within 48 h annotates 'infection likely'."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        lab_result(pid, "crp", 20.0, at=T0 - timedelta(hours=40)),
        lab_result(pid, "crp", 40.0, at=T0 - timedelta(hours=2)),
        vitals(pid, temperature=38.5, env={"at": T0}),
    ]

    _, signals = replay(facts)

    assert signals[0].payload.values["crp_doubled"] is True


# --- INF-02 SIRS ---


def test_sirs_two_strict_criteria_is_u1_to_investigator() -> None:
    """INF-02: T 38.1 °C and HR 95/min in one set -> SIRS (2 criteria), U1 to INV."""
    pid = unique("P")

    _, signals = replay(
        [enrolled(pid), vitals(pid, temperature=38.1, heart_rate=95, env={"at": T0})]
    )

    sirs = fired(signals, "INF-02")
    assert [(s.payload.urgency, s.payload.recipients) for s in sirs] == [
        (Urgency.U1, (Role.INVESTIGATOR,))
    ]
    assert sirs[0].payload.values["sirs_criteria"] == "heart_rate,temperature"


def test_sirs_thresholds_are_strict() -> None:
    """INF-02: HR 90, RR 20, T 38.0 and WBC 12 meet no SIRS criterion (strict '>')."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        vitals(pid, temperature=38.0, heart_rate=90, respiratory_rate=20, env={"at": T0}),
        lab_result(pid, "wbc", 12.0, at=T0),
    ]

    _, signals = replay(facts)

    assert fired(signals, "INF-02") == []


def test_sirs_low_temperature_and_low_wbc_count() -> None:
    """INF-02: T < 36.0 °C and WBC < 4 x10^9/L are SIRS criteria too."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        vitals(pid, temperature=35.9, env={"at": T0}),
        lab_result(pid, "wbc", 3.9, at=hours_after(2)),
    ]

    _, signals = replay(facts)

    assert fired(signals, "INF-02")[0].payload.values["sirs_criteria"] == "temperature,wbc"


def test_sirs_window_is_24h_closed() -> None:
    """INF-02: criteria exactly 24 h apart share a window; 24 h + 1 min apart do not."""
    inside, outside = unique("P"), unique("P")

    _, within = replay(
        [
            enrolled(inside),
            vitals(inside, heart_rate=100, env={"at": T0}),
            vitals(inside, respiratory_rate=24, env={"at": hours_after(24)}),
        ]
    )
    _, beyond = replay(
        [
            enrolled(outside),
            vitals(outside, heart_rate=100, env={"at": T0}),
            vitals(outside, respiratory_rate=24, env={"at": hours_after(24 + 1 / 60)}),
        ]
    )

    assert (rule_ids(within), rule_ids(beyond)) == (["INF-02"], [])


# --- INF-03 qSOFA / septic shock ---


def test_qsofa_rr_22_and_sbp_100_is_u0() -> None:
    """INF-03: RR >= 22 and SBP <= 100 (qSOFA 2) -> sepsis screen positive, U0 to INV and SO."""
    pid = unique("P")

    _, signals = replay(
        [enrolled(pid), vitals(pid, respiratory_rate=22, systolic_bp=100, env={"at": T0})]
    )

    qsofa = fired(signals, "INF-03")
    assert [(s.payload.urgency, s.payload.recipients) for s in qsofa] == [
        (Urgency.U0, (Role.INVESTIGATOR, Role.SAFETY_OFFICER))
    ]
    assert qsofa[0].payload.values["qsofa_score"] == 2


def test_qsofa_one_criterion_is_not_enough() -> None:
    """INF-03: RR 21 with SBP 100 is qSOFA 1: no signal."""
    pid = unique("P")

    _, signals = replay(
        [enrolled(pid), vitals(pid, respiratory_rate=21, systolic_bp=100, env={"at": T0})]
    )

    assert fired(signals, "INF-03") == []


def test_qsofa_altered_mentation_by_gcs_or_new_overt_he() -> None:
    """INF-03: GCS < 15, or a new WH >= 2 after a grade < 2, counts as altered mentation."""
    gcs, he = unique("P"), unique("P")

    _, by_gcs = replay([enrolled(gcs), vitals(gcs, gcs=14, respiratory_rate=22, env={"at": T0})])
    _, by_he = replay(
        [
            enrolled(he, at=T0 - timedelta(days=20)),
            west_haven(he, 1, at=T0 - timedelta(hours=30)),
            vitals(he, systolic_bp=95, env={"at": T0}),
            west_haven(he, 2, at=hours_after(2)),
        ]
    )

    assert (
        fired(by_gcs, "INF-03")[0].payload.values["criteria"]
        == "altered_mentation,respiratory_rate"
    )
    assert fired(by_he, "INF-03")[0].payload.values["criteria"] == "altered_mentation,systolic_bp"


def test_septic_shock_vasopressor_and_lactate() -> None:
    """INF-03: vasopressor started and lactate > 2 mmol/L within 24 h -> septic shock, U0."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        lab_result(pid, "lactate", 2.1, at=T0),
        procedure(pid, Treatment.VASOPRESSOR, at=hours_after(3)),
    ]

    _, signals = replay(facts)

    assert fired(signals, "INF-03")[0].payload.values["septic_shock"] is True


# --- INF-04 SBP, INF-05 bacteraemia ---


def test_ascitic_pmn_250_is_sbp_u0() -> None:
    """INF-04: ascitic PMN >= 250/mm³ (0.25 x10^9/L, 751-8 on ascitic fluid) -> U0."""
    pid, blood = unique("P"), unique("P")

    _, ascites = replay(
        [enrolled(pid), lab_result(pid, "neutrophils", 0.25, specimen="ascitic_fluid", at=T0)]
    )
    _, neutropenia = replay(
        [enrolled(blood), lab_result(blood, "neutrophils", 0.25, specimen="blood", at=T0)]
    )

    assert [(s.payload.rule_id, s.payload.urgency) for s in ascites] == [("INF-04", Urgency.U0)]
    # Blood neutrophils 0.25 x10^9/L are no SBP, but CTCAE grade 4 even without a range.
    assert "INF-04" not in rule_ids(neutropenia)
    assert {"LAB-G4", "LAB-SHIFT"} == set(rule_ids(neutropenia))


def test_positive_blood_culture_is_u0_and_late_result_says_so() -> None:
    """INF-05: culture growth (600-7 = 1) -> U0; reported 3 days after collection -> late."""
    pid = unique("P")
    growth = lab_result(pid, "culture", 1.0, at=T0, recorded_at=T0 + timedelta(days=3))

    _, signals = replay([enrolled(pid), lab_result(pid, "culture", 0.0, at=T0), growth])

    payload = fired(signals, "INF-05")[0].payload
    assert [s.causation_id for s in signals] == [growth.event_id]
    assert (payload.urgency, payload.values["late"], payload.values["delay_hours"]) == (
        Urgency.U0,
        True,
        72.0,
    )


def test_bacteraemia_after_pe_is_tagged_with_the_procedure_and_arm() -> None:
    """INF-07 tag: a positive culture within W_INF_PE = (PE start, +72 h] names the PE and arm."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        procedure(pid, PE, at=T0),
        lab_result(pid, "culture", 1.0, at=hours_after(72)),
    ]

    _, signals = replay(facts)

    values = fired(signals, "INF-05")[0].payload.values
    assert (
        values["procedure_proximate"],
        values["procedure"],
        values["window"],
        values["arm"],
    ) == (
        True,
        "plasma_exchange",
        "W_INF_PE",
        "B",
    )


# --- INF-07 procedure-proximate infection AE ---


def test_infection_ae_within_7_days_of_msc_is_inf07_u1() -> None:
    """INF-07: an infection AE with onset in W_INF_MSC = (start, +7 d] -> U1 with procedure tag."""
    pid = unique("P")
    facts = with_msc(pid, ae_reported(pid, term="Pneumonia", env={"at": T0 + timedelta(days=7)}))

    _, signals = replay(facts)

    payload = fired(signals, "INF-07")[0].payload
    assert (payload.urgency, payload.values["window"], payload.values["procedure"]) == (
        Urgency.U1,
        "W_INF_MSC",
        "uc_msc_infusion",
    )


def test_infection_window_is_open_at_start_and_closed_at_7_days() -> None:
    """INF-07: onset exactly at the MSC start or 7 d + 1 min after is outside the window."""
    start, late = unique("P"), unique("P")

    _, at_start = replay(with_msc(start, ae_reported(start, term="Sepsis", env={"at": T0})))
    _, after = replay(
        with_msc(
            late, ae_reported(late, term="Sepsis", env={"at": T0 + timedelta(days=7, minutes=1)})
        )
    )

    assert (fired(at_start, "INF-07"), fired(after, "INF-07")) == ([], [])


def test_pe_infection_window_is_72h() -> None:
    """INF-07: W_INF_PE = (PE start, +72 h]: 72 h fires, 72 h + 1 min does not."""
    inside, outside = unique("P"), unique("P")

    def pe_then(pid: str, hours: float) -> list:
        return [
            enrolled(pid),
            procedure(pid, PE, at=T0),
            ae_reported(pid, term="Lung infection", env={"at": hours_after(hours)}),
        ]

    _, within = replay(pe_then(inside, 72))
    _, beyond = replay(pe_then(outside, 72 + 1 / 60))

    assert (rule_ids(within), rule_ids(beyond)) == (["INF-07"], [])


def test_infection_ae_becoming_serious_escalates_to_u0() -> None:
    """INF-07: non-serious -> U1; becoming serious re-fires once at U0, beside SAE-01."""
    pid = unique("P")
    at = {"at": hours_after(30)}
    facts = with_msc(
        pid,
        ae_reported(pid, term="Sepsis", env=at),
        ae_updated(pid, term="Sepsis", grade=3, env=at),
        ae_updated(
            pid, term="Sepsis", grade=4, criteria=(SeriousnessCriterion.LIFE_THREATENING,), env=at
        ),
        ae_updated(
            pid, term="Sepsis", grade=4, criteria=(SeriousnessCriterion.LIFE_THREATENING,), env=at
        ),
    )

    _, signals = replay(facts)

    inf07 = fired(signals, "INF-07")
    assert [(s.causation_id, s.payload.urgency) for s in inf07] == [
        (facts[2].event_id, Urgency.U1),
        (facts[4].event_id, Urgency.U0),
    ]
    assert "clinical_urgency" not in inf07[1].payload.values
    assert [s.payload.rule_id for s in signals if s.causation_id == facts[4].event_id] == [
        "SAE-01",
        "INF-07",
    ]


def test_infection_without_procedure_is_not_inf07() -> None:
    """INF-07 needs a procedure window: an infection AE with no UC-MSC or PE raises nothing here."""
    pid = unique("P")

    _, signals = replay([enrolled(pid), ae_reported(pid, term="Sepsis")])

    assert signals == ()


# --- INF-08 catheter infection ---


def test_catheter_infection_is_u1_and_positive_culture_escalates_to_u0() -> None:
    """INF-08: catheter infection AE -> U1; a growth within 72 h of onset -> U0 (once each)."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        procedure(pid, PE, at=T0),
        ae_reported(pid, term="Catheter related infection", env={"at": hours_after(24)}),
        lab_result(pid, "culture", 1.0, at=hours_after(30)),
        lab_result(pid, "culture", 1.0, at=hours_after(40)),
    ]

    _, signals = replay(facts)

    inf08 = fired(signals, "INF-08")
    assert [(s.causation_id, s.payload.urgency) for s in inf08] == [
        (facts[2].event_id, Urgency.U1),
        (facts[3].event_id, Urgency.U0),
    ]
    assert inf08[1].payload.values["bacteraemia"] is True
    assert fired(signals, "INF-07") == []  # INF-08 carries the procedure tag itself
