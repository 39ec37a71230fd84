"""HE-01..05: hepatic encephalopathy rules (RULES.md §2; West Haven, AASLD/EASL 2014)."""

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
    west_haven,
)

ENROLLED = T0 - timedelta(days=30)


def history(pid: str, *grades: int, step_hours: float = 24) -> list:
    """Enrolment, then West Haven grades `step_hours` apart ending at T0."""
    start = T0 - timedelta(hours=step_hours * (len(grades) - 1))
    return [enrolled(pid, at=ENROLLED)] + [
        west_haven(pid, grade, at=start + timedelta(hours=step_hours * i))
        for i, grade in enumerate(grades)
    ]


def test_vector_wh_0_1_1_then_2_is_new_onset_u1() -> None:
    """Test vector §2: WH history [0, 1, 1] -> 2 raises HE-01 at U1 to INV and SO."""
    pid = unique("P")

    _, signals = replay(history(pid, 0, 1, 1, 2))

    assert rule_ids(signals) == ["HE-01"]
    payload = signals[0].payload
    assert (payload.urgency, payload.recipients) == (
        Urgency.U1,
        (Role.INVESTIGATOR, Role.SAFETY_OFFICER),
    )
    assert (payload.values["west_haven_grade"], payload.values["previous_west_haven_grade"]) == (
        2,
        1,
    )


def test_vector_ae_hepatic_encephalopathy_grade_2_without_prior_wh_is_new_onset_u1() -> None:
    """Test vector §2 / HE-03: AE 'Hepatic encephalopathy' grade 2, no prior WH -> HE-01 U1."""
    pid = unique("P")
    ae = ae_reported(pid, term="Hepatic encephalopathy", grade=2)

    _, signals = replay([enrolled(pid, at=ENROLLED), ae])

    assert [(s.payload.rule_id, s.payload.urgency) for s in signals] == [("HE-01", Urgency.U1)]
    assert signals[0].payload.values["route"] == "adverse_event (HE-03)"
    assert signals[0].causation_id == ae.event_id


def test_new_onset_grade_3_is_u0() -> None:
    """HE-01: new-onset WH 3-4 is U0 (CLIF-C brain failure)."""
    pid = unique("P")

    _, signals = replay(history(pid, 0, 3))

    assert [(s.payload.rule_id, s.payload.urgency) for s in signals] == [("HE-01", Urgency.U0)]


def test_any_grade_3_after_overt_history_is_he02_u0() -> None:
    """HE-02: WH >= 3 regardless of history is U0 (not new onset after an overt grade)."""
    pid = unique("P")

    _, signals = replay(history(pid, 2, 3, step_hours=100))

    assert [(s.payload.rule_id, s.payload.urgency) for s in signals] == [
        ("HE-01", Urgency.U1),
        ("HE-02", Urgency.U0),
    ]


def test_worsening_by_one_grade_within_72h_is_he02_u1() -> None:
    """HE-02: WH >= previous + 1 within 72 h (here 1 -> 2 with an overt grade 10 days ago)."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        west_haven(pid, 2, at=T0 - timedelta(days=10)),
        west_haven(pid, 1, at=T0 - timedelta(hours=72)),
        west_haven(pid, 2, at=T0),
    ]

    _, signals = replay(facts)

    assert [(s.payload.rule_id, s.causation_id) for s in signals] == [
        ("HE-01", facts[1].event_id),
        ("HE-02", facts[3].event_id),
    ]


def test_worsening_more_than_72h_after_previous_is_not_he02() -> None:
    """HE-02 boundary: a one-grade rise 72 h + 1 min after the previous assessment does not fire."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        west_haven(pid, 2, at=T0 - timedelta(days=10)),
        west_haven(pid, 1, at=T0 - timedelta(hours=72, minutes=1)),
        west_haven(pid, 2, at=T0),
    ]

    _, signals = replay(facts)

    assert rule_ids(signals) == ["HE-01"]


def test_overt_grade_exactly_14_days_before_is_within_the_lookback() -> None:
    """HE-01 boundary: an overt grade exactly 14 d before is inside the closed lookback."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        west_haven(pid, 2, at=T0 - timedelta(days=14)),
        west_haven(pid, 0, at=T0 - timedelta(days=7)),
        west_haven(pid, 2, at=T0),
    ]

    _, signals = replay(facts)

    assert [s.causation_id for s in fired(signals, "HE-01")] == [facts[1].event_id]


def test_overt_grade_more_than_14_days_before_does_not_prevent_new_onset() -> None:
    """HE-01: the lookback is 14 d; an overt grade 14 d + 1 min before starts no episode now."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        west_haven(pid, 2, at=T0 - timedelta(days=14, minutes=1)),
        west_haven(pid, 0, at=T0 - timedelta(days=7)),
        west_haven(pid, 2, at=T0),
    ]

    _, signals = replay(facts)

    assert [s.causation_id for s in fired(signals, "HE-01")] == [
        facts[1].event_id,
        facts[3].event_id,
    ]


def test_lookback_starts_at_randomisation_when_shorter() -> None:
    """HE-01: grades before randomisation are baseline; they neither fire nor block onset."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=T0 - timedelta(days=3)),
        west_haven(pid, 2, at=T0 - timedelta(days=5)),
        west_haven(pid, 2, at=T0),
    ]

    _, signals = replay(facts)

    assert [s.causation_id for s in fired(signals, "HE-01")] == [facts[2].event_id]


def test_covert_grades_do_not_fire() -> None:
    """HE-01/02 concern overt HE: 0 -> 1 -> 0 -> 1 (covert) raises nothing."""
    pid = unique("P")

    _, signals = replay(history(pid, 0, 1, 0, 1))

    assert signals == ()


def test_same_episode_does_not_refire() -> None:
    """RULES.md §0.2: a persisting WH 2 does not re-fire; a rise to WH 3 (escalation) does."""
    pid = unique("P")

    _, signals = replay(history(pid, 0, 2, 1, 2, 2, 3, 3))
    he = [s for s in signals if s.payload.rule_id.startswith("HE-")]  # SAE-05 also reminds

    assert [(s.payload.rule_id, s.payload.values["west_haven_grade"]) for s in he] == [
        ("HE-01", 2),
        ("HE-02", 3),
    ]


def test_ae_route_llt_code_and_coma_term() -> None:
    """HE-03: LLT 10014625 or the term 'hepatic coma' route the AE as a West Haven grade."""
    pid = unique("P")
    coded = ae_reported(pid, ae_ref="AE-1", term="Confusion (HE)", llt="10014625", grade=2)
    coma = ae_reported(
        pid, ae_ref="AE-2", term="Hepatic coma", grade=4, env={"at": hours_after(200)}
    )

    _, signals = replay([enrolled(pid, at=ENROLLED), coded, coma])

    assert [(s.payload.rule_id, s.payload.urgency) for s in signals] == [
        ("HE-01", Urgency.U1),
        ("HE-02", Urgency.U0),
    ]


def test_ae_grade_rise_on_update_is_worsening() -> None:
    """HE-03: an HE AE updated from grade 2 to 3 raises HE-02 U0; an unchanged update nothing."""
    pid = unique("P")
    term = "Encephalopathy"
    facts = [
        enrolled(pid, at=ENROLLED),
        ae_reported(pid, term=term, grade=2),
        ae_updated(pid, term=term, grade=2),
        ae_updated(pid, term=term, grade=3),
    ]

    _, signals = replay(facts)

    assert [(s.payload.rule_id, s.causation_id) for s in signals] == [
        ("HE-01", facts[1].event_id),
        ("HE-02", facts[3].event_id),
    ]


def test_ae_grade_1_is_covert_and_does_not_fire_he01() -> None:
    """HE-03 mapping WH1 -> G1: a grade 1 encephalopathy AE is not overt HE."""
    pid = unique("P")

    _, signals = replay(
        [enrolled(pid, at=ENROLLED), ae_reported(pid, term="Encephalopathy", grade=1)]
    )

    assert fired(signals, "HE-01") == []


def test_serious_grade_3_ae_fires_he01_at_its_clinical_u0_beside_sae01() -> None:
    """A serious HE AE: SAE-01 and HE-01 both U0 (notify pages each person once per event)."""
    pid = unique("P")
    ae = ae_reported(
        pid,
        term="Hepatic encephalopathy",
        grade=3,
        criteria=(SeriousnessCriterion.HOSPITALISATION,),
    )

    _, signals = replay([enrolled(pid, at=ENROLLED), ae])

    he = fired(signals, "HE-01")[0].payload
    assert [s.payload.rule_id for s in signals] == ["SAE-01", "HE-01"]
    assert (he.urgency, he.recipients) == (Urgency.U0, (Role.INVESTIGATOR, Role.SAFETY_OFFICER))
    assert "paged_via" not in he.values


def test_late_assessment_still_fires_and_says_late() -> None:
    """Late facts: a WH 2 recorded 3 days late, after a later WH 0, still fires, flagged late."""
    pid = unique("P")
    later = west_haven(pid, 0, at=T0 + timedelta(days=1))
    late = west_haven(pid, 2, at=T0, recorded_at=T0 + timedelta(days=3))

    _, signals = replay([enrolled(pid, at=ENROLLED), later, late])

    values = fired(signals, "HE-01")[0].payload.values
    assert (values["late"], values["delay_hours"]) == (True, 72.0)


def test_late_onset_of_a_known_episode_does_not_refire() -> None:
    """Late facts: an earlier WH 2 reported after the episode's HE-01 is the same episode."""
    pid = unique("P")
    first = west_haven(pid, 2, at=T0)
    late = west_haven(pid, 2, at=T0 - timedelta(hours=20), recorded_at=T0 + timedelta(hours=5))

    _, signals = replay([enrolled(pid, at=ENROLLED), first, late])

    assert [s.causation_id for s in signals] == [first.event_id]


def test_ammonia_above_uln_is_supportive() -> None:
    """HE-04: an ammonia > ULN within 24 h annotates 'supportive' (never a trigger itself)."""
    pid = unique("P")
    ammonia = lab_result(pid, "ammonia", 80.0, high=32.0, at=T0 - timedelta(hours=24))

    _, signals = replay([enrolled(pid, at=ENROLLED), ammonia, west_haven(pid, 2, at=T0)])

    values = fired(signals, "HE-01")[0].payload.values
    assert (values["ammonia_umol_l"], values["ammonia_interpretation"]) == (80.0, "supportive")
    assert ammonia.event_id in fired(signals, "HE-01")[0].payload.evidence_event_ids


def test_normal_ammonia_questions_the_diagnosis() -> None:
    """HE-04: an ammonia <= ULN taken within 24 h after the assessment reads 're-evaluate'."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        lab_result(pid, "ammonia", 32.0, high=32.0, at=T0 + timedelta(hours=24)),
        west_haven(pid, 2, at=T0),
    ]

    _, signals = replay(facts)

    assert (
        fired(signals, "HE-01")[0].payload.values["ammonia_interpretation"]
        == "normal ammonia: re-evaluate diagnosis"
    )


def test_ammonia_alone_never_fires_and_outside_24h_is_ignored() -> None:
    """HE-04: ammonia is never a trigger, and one 24 h + 1 min away is not attached."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        lab_result(pid, "ammonia", 150.0, high=32.0, at=T0 - timedelta(hours=24, minutes=1)),
        west_haven(pid, 2, at=T0),
    ]

    _, signals = replay(facts)

    assert rule_ids(signals) == ["HE-01"]
    assert "ammonia_interpretation" not in signals[0].payload.values


def test_precipitants_are_annotated() -> None:
    """HE-05: Na < 125 mmol/L and a bleeding alert within 72 h are named as precipitants."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        lab_result(pid, "hb", 102.0, at=T0 - timedelta(hours=48)),
        lab_result(pid, "hb", 71.0, at=T0 - timedelta(hours=28)),
        lab_result(pid, "sodium", 123.0, low=135.0, at=T0 - timedelta(hours=12)),
        west_haven(pid, 2, at=T0),
    ]

    _, signals = replay(facts)

    assert fired(signals, "HE-01")[0].payload.values["precipitants"] == "VB-02/03, Na<125"


def test_site_and_arm_are_carried_into_the_signal() -> None:
    """Signals carry the participant's site (envelope) and arm (payload)."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED, site_id="S03"),
        procedure(pid, Treatment.UC_MSC_INFUSION, at=T0 - timedelta(days=2), site_id="S03"),
        west_haven(pid, 3, at=T0, site_id="S03"),
    ]

    _, signals = replay(facts)

    assert [(s.site_id, s.payload.arm) for s in signals] == [("S03", "B")]
