"""VB-01..06: variceal / portal-hypertensive bleeding rules (RULES.md §3; Baveno, ISTH)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from schemas import Arm, Role, SeriousnessCriterion, SignalRaised, SignalUpdated, Treatment, Urgency
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
    unique,
)
from .factories import (
    rule_ids as all_rule_ids,
)

HOSPITALISED = (SeriousnessCriterion.HOSPITALISATION,)
BLEED = "Oesophageal varices haemorrhage"


def rule_ids(signals: Sequence[SignalRaised | SignalUpdated]) -> list[str]:
    """The rules that fired, but the CTCAE lab grades (LAB-*, test_lab_grades.py).

    These Hb results carry no reference range; below 100 g/L they are also CTCAE anaemia
    grade 2 or 3, graded on its absolute values.
    """
    return [rule for rule in all_rule_ids(signals) if not rule.startswith("LAB-")]


def _not_lab(signals: Sequence[Any]) -> list[Any]:
    return [s for s in signals if not s.payload.rule_id.startswith("LAB-")]


def hb_pair(pid: str, first: float, second: float, *, hours: float = 20) -> list:
    """Enrolment and two Hb results `hours` apart (the second at T0 + hours)."""
    return [
        enrolled(pid, at=T0 - timedelta(days=10)),
        lab_result(pid, "hb", first, at=T0),
        lab_result(pid, "hb", second, at=hours_after(hours)),
    ]


# --- VB-01 bleeding AE ---


@pytest.mark.parametrize(
    "term",
    [
        "Oesophageal varices haemorrhage",
        "Esophageal varices hemorrhage",
        "Gastric varices haemorrhage",
        "Haematemesis",
        "Melena",
        "Upper gastrointestinal haemorrhage",
        "Gastro-intestinal haemorrhage",
        "Haemorrhagic portal hypertensive gastropathy",
    ],
)
def test_bleeding_ae_terms_fire_vb01_u0(term: str) -> None:
    """VB-01: each VB-list term (British or US spelling), any grade, is U0 to INV and SO."""
    pid = unique("P")

    _, signals = replay([enrolled(pid), ae_reported(pid, term=term, grade=1)])

    payload = fired(signals, "VB-01")[0].payload
    assert (payload.urgency, payload.recipients) == (
        Urgency.U0,
        (Role.INVESTIGATOR, Role.SAFETY_OFFICER),
    )
    assert payload.values["presumed_serious"] is True


def test_bleeding_llt_code_fires_vb01() -> None:
    """VB-01: a CTCAE bleeding LLT of §0.6 (Duodenal hemorrhage 10055242) fires, any term."""
    pid = unique("P")

    _, signals = replay([enrolled(pid), ae_reported(pid, term="GI bleed", llt="10055242")])

    assert rule_ids(signals) == ["VB-01"]


def test_non_bleeding_varices_do_not_fire() -> None:
    """VB-01: 'Varices oesophageal' (non-bleeding) and portal hypertension are not bleeds."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        ae_reported(pid, ae_ref="AE-1", term="Varices oesophageal"),
        ae_reported(pid, ae_ref="AE-2", term="Portal hypertension", llt="10036200"),
    ]

    _, signals = replay(facts)

    assert signals == ()


def test_vb01_fires_once_per_ae() -> None:
    """VB-01 fires once per AE: updates of the same bleed do not re-fire it."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        ae_reported(pid, term=BLEED, grade=2),
        ae_updated(pid, term=BLEED, grade=3),
    ]

    _, signals = replay(facts)

    assert [s.causation_id for s in fired(signals, "VB-01")] == [facts[1].event_id]


def test_serious_bleed_fires_sae01_and_vb01_at_u0() -> None:
    """A bleed reported serious: SAE-01 and VB-01 both at U0 (notify pages each person once)."""
    pid = unique("P")

    _, signals = replay([enrolled(pid), ae_reported(pid, term=BLEED, criteria=HOSPITALISED)])

    assert [(s.payload.rule_id, s.payload.urgency) for s in signals] == [
        ("SAE-01", Urgency.U0),
        ("VB-01", Urgency.U0),
    ]
    assert "paged_via" not in fired(signals, "VB-01")[0].payload.values


def test_bleed_coded_later_on_an_existing_sae_still_pages() -> None:
    """VB-01 pages (U0) when a serious AE becomes a bleed on a later update: new information."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        ae_reported(pid, term="Abdominal pain", criteria=HOSPITALISED),
        ae_updated(pid, term="Melaena", criteria=HOSPITALISED),
    ]

    _, signals = replay(facts)

    assert fired(signals, "VB-01")[0].payload.urgency is Urgency.U0


# --- VB-02 / VB-03 haemoglobin drops ---


def test_vector_hb_102_to_71_in_20h_is_vb02() -> None:
    """Test vector §3: Hb 102 -> 71 g/L over 20 h, no transfusion -> VB-02 (drop 31 g/L), U0."""
    pid = unique("P")

    _, signals = replay(hb_pair(pid, 102.0, 71.0))

    assert rule_ids(signals) == ["VB-02"]
    payload = signals[0].payload
    assert (payload.urgency, payload.recipients) == (
        Urgency.U0,
        (Role.INVESTIGATOR, Role.SAFETY_OFFICER),
    )
    assert (payload.values["hb_drop_g_l"], payload.values["hours_between"]) == (31.0, 20.0)


def test_vector_hb_102_to_73_in_20h_is_vb03_only() -> None:
    """Test vector §3: Hb 102 -> 73 g/L over 20 h (drop 29) -> VB-03 only, U1 to INV."""
    pid = unique("P")

    _, signals = replay(hb_pair(pid, 102.0, 73.0))

    assert [
        (s.payload.rule_id, s.payload.urgency, s.payload.recipients) for s in _not_lab(signals)
    ] == [("VB-03", Urgency.U1, (Role.INVESTIGATOR,))]


def test_drop_of_exactly_30_g_l_is_major() -> None:
    """VB-02 boundary: a drop of exactly 30 g/L (3.0 g/dL) meets Hb(t2) <= Hb(t1) - 30."""
    pid = unique("P")

    _, signals = replay(hb_pair(pid, 110.0, 80.0))

    assert rule_ids(signals) == ["VB-02"]


def test_drop_of_exactly_20_g_l_is_vb03_and_19_is_nothing() -> None:
    """VB-03 boundary: a fall of exactly 20 g/L fires; 19.9 g/L does not."""
    pid, other = unique("P"), unique("P")

    _, at_threshold = replay(hb_pair(pid, 110.0, 90.0))
    _, below = replay(hb_pair(other, 110.0, 90.1))

    assert (rule_ids(at_threshold), rule_ids(below)) == (["VB-03"], [])


def test_drop_over_exactly_24h_counts_and_over_24h_1min_does_not() -> None:
    """VB-02 window: t2 - t1 <= 24 h is closed; 24 h + 1 min is outside."""
    pid, other = unique("P"), unique("P")

    _, exactly = replay(hb_pair(pid, 110.0, 75.0, hours=24))
    _, longer = replay(hb_pair(other, 110.0, 75.0, hours=24 + 1 / 60))

    assert (rule_ids(exactly), rule_ids(longer)) == (["VB-02"], [])


def test_transfusion_between_suppresses_vb02_but_not_vb03() -> None:
    """VB-02 requires no RBC transfusion in (t1, t2]; the drop is still VB-03 (any status)."""
    pid = unique("P")
    facts = hb_pair(pid, 102.0, 71.0)
    facts.insert(2, procedure(pid, Treatment.RBC_TRANSFUSION, at=hours_after(10)))

    _, signals = replay(facts)

    assert rule_ids(signals) == ["VB-03"]
    assert signals[0].payload.values["rbc_transfused_between"] is True


def test_transfusion_interval_is_open_at_t1_and_closed_at_t2() -> None:
    """VB-02: a transfusion started exactly at t1 does not count; one at exactly t2 does."""
    at_t1, at_t2 = unique("P"), unique("P")
    first = hb_pair(at_t1, 102.0, 71.0)
    first.insert(2, procedure(at_t1, Treatment.RBC_TRANSFUSION, at=T0))
    second = hb_pair(at_t2, 102.0, 71.0)
    second.insert(2, procedure(at_t2, Treatment.RBC_TRANSFUSION, at=hours_after(20)))

    _, signals_t1 = replay(first)
    _, signals_t2 = replay(second)

    assert (rule_ids(signals_t1), rule_ids(signals_t2)) == (["VB-02"], ["VB-03"])


def test_late_earlier_hb_still_fires_and_is_flagged_late() -> None:
    """Late facts: the earlier Hb, recorded 2 days late after the later one, completes VB-02."""
    pid = unique("P")
    later = lab_result(pid, "hb", 71.0, at=hours_after(20))
    late = lab_result(pid, "hb", 102.0, at=T0, recorded_at=T0 + timedelta(days=2))

    _, raised = replay([enrolled(pid), later, late])
    signals = _not_lab(raised)

    assert rule_ids(signals) == ["VB-02"]
    assert signals[0].causation_id == late.event_id
    assert (signals[0].payload.values["late"], signals[0].payload.values["delay_hours"]) == (
        True,
        48.0,
    )


def test_continuing_fall_does_not_refire_until_escalation() -> None:
    """§0.2: a further 20 g/L fall in the same episode is quiet; a 30 g/L fall escalates."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        lab_result(pid, "hb", 130.0, at=T0),
        lab_result(pid, "hb", 108.0, at=hours_after(12)),
        lab_result(pid, "hb", 130.0, at=hours_after(30)),
        lab_result(pid, "hb", 108.0, at=hours_after(40)),
        lab_result(pid, "hb", 75.0, at=hours_after(60)),
    ]

    _, signals = replay(facts)

    assert rule_ids(signals) == ["VB-03", "VB-02"]


# --- VB-04 Hb below 70 g/L ---


def test_hb_below_70_is_vb04_u1_and_exactly_70_is_not() -> None:
    """VB-04: Hb < 70 g/L -> U1 to INV; exactly 70 g/L does not fire (strict)."""
    low, edge = unique("P"), unique("P")

    _, below = replay([enrolled(low), lab_result(low, "hb", 69.9, at=T0)])
    _, at_threshold = replay([enrolled(edge), lab_result(edge, "hb", 70.0, at=T0)])

    assert [(s.payload.rule_id, s.payload.urgency) for s in _not_lab(below)] == [
        ("VB-04", Urgency.U1)
    ]
    assert _not_lab(at_threshold) == []


def test_persistently_low_hb_fires_once_per_episode() -> None:
    """VB-04 re-fires only after a 72 h quiet period (RULES.md §0.2)."""
    pid = unique("P")
    facts = [enrolled(pid)] + [
        lab_result(pid, "hb", 65.0, at=hours_after(h)) for h in (0, 24, 48, 72 + 48 + 1)
    ]

    _, signals = replay(facts)

    assert [s.causation_id for s in fired(signals, "VB-04")] == [
        facts[1].event_id,
        facts[4].event_id,
    ]


# --- VB-05 rebleed ---


def test_rebleed_within_42_days_is_u0_with_dsmb_chair() -> None:
    """VB-05: a second bleeding AE <= 42 days after the first -> U0 to INV, SO and DSMB chair."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        ae_reported(pid, ae_ref="AE-1", term=BLEED),
        ae_reported(pid, ae_ref="AE-2", term="Melaena", env={"at": T0 + timedelta(days=42)}),
    ]

    _, signals = replay(facts)

    payload = fired(signals, "VB-05")[0].payload
    assert (payload.urgency, payload.recipients) == (
        Urgency.U0,
        (Role.INVESTIGATOR, Role.SAFETY_OFFICER, Role.DSMB_CHAIR),
    )
    assert (payload.values["ae_ref"], payload.values["previous_ae_ref"]) == ("AE-2", "AE-1")


def test_bleed_after_42_days_is_not_a_rebleed() -> None:
    """VB-05: 42 days + 1 min after the first bleed is outside the six-week horizon."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        ae_reported(pid, ae_ref="AE-1", term=BLEED),
        ae_reported(pid, ae_ref="AE-2", term=BLEED, env={"at": T0 + timedelta(days=42, minutes=1)}),
    ]

    _, signals = replay(facts)

    assert fired(signals, "VB-05") == []


def test_two_terms_for_one_bleed_are_not_a_rebleed() -> None:
    """VB-05 [DC]: haematemesis and melaena with onsets < 24 h apart are one episode."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        ae_reported(pid, ae_ref="AE-1", term="Haematemesis"),
        ae_reported(pid, ae_ref="AE-2", term="Melaena", env={"at": hours_after(6)}),
    ]

    _, signals = replay(facts)

    assert fired(signals, "VB-05") == []


def test_late_earlier_bleed_makes_the_known_bleed_a_rebleed() -> None:
    """VB-05 late facts: an earlier bleed reported later makes the known bleed a rebleed."""
    pid = unique("P")
    known = ae_reported(pid, ae_ref="AE-2", term=BLEED, env={"at": T0 + timedelta(days=10)})
    late = ae_reported(
        pid, ae_ref="AE-1", term=BLEED, env={"at": T0, "recorded_at": T0 + timedelta(days=12)}
    )

    _, signals = replay([enrolled(pid), known, late])

    rebleed = fired(signals, "VB-05")
    assert [(s.causation_id, s.payload.values["ae_ref"]) for s in rebleed] == [
        (late.event_id, "AE-2")
    ]
    assert rebleed[0].payload.values["late"] is True


# --- VB-06 PE-day bleeding risk ---


def test_low_platelets_before_pe_is_vb06_u2() -> None:
    """VB-06: platelets < 50 x10^9/L in the 24 h before a PE session -> U2 context."""
    pid = unique("P")
    facts = [
        enrolled(pid, arm=Arm.PLASMA_EXCHANGE),
        lab_result(pid, "platelets", 45.0, at=T0 - timedelta(hours=24)),
        procedure(pid, Treatment.PLASMA_EXCHANGE, at=T0),
    ]

    _, signals = replay(facts)

    assert [(s.payload.rule_id, s.payload.urgency) for s in signals] == [("VB-06", Urgency.U2)]
    assert signals[0].payload.values["platelets_min_e9_l"] == 45.0


def test_inr_exactly_2_5_is_not_risk_and_late_high_inr_fires() -> None:
    """VB-06: INR > 2.5 is strict; a late INR 2.6 taken 2 h before the session fires it."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        lab_result(pid, "inr", 2.5, at=T0 - timedelta(hours=3)),
        procedure(pid, Treatment.PLASMA_EXCHANGE, at=T0),
        lab_result(pid, "inr", 2.6, at=T0 - timedelta(hours=2), recorded_at=hours_after(30)),
    ]

    _, signals = replay(facts)

    assert [s.causation_id for s in fired(signals, "VB-06")] == [facts[3].event_id]
