"""SAE-01: serious adverse event recorded (ICH E2A; ICH E6(R2) 4.11.1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas import Role, SeriousnessCriterion, SignalRaised, Urgency
from services.rules.core.fold import replay

from .factories import T0, ae_reported, ae_updated, enrolled, unique

S = SeriousnessCriterion


def sae_signals(signals: tuple[SignalRaised, ...]) -> list[SignalRaised]:
    return [s for s in signals if s.payload.rule_id == "SAE-01"]


@pytest.mark.parametrize("criterion", list(SeriousnessCriterion))
def test_sae_raised_when_any_seriousness_criterion(criterion: SeriousnessCriterion) -> None:
    """SAE-01 fires for each ICH E2A seriousness criterion."""
    pid = unique("P")
    fact = ae_reported(pid, criteria=(criterion,))

    _, signals = replay([enrolled(pid), fact])

    assert [s.causation_id for s in sae_signals(signals)] == [fact.event_id]


def test_no_sae_when_not_serious() -> None:
    """SAE-01 does not fire for a non-serious AE, whatever its CTCAE grade (serious ≠ severe)."""
    pid = unique("P")

    _, signals = replay([enrolled(pid), ae_reported(pid, grade=4)])

    assert sae_signals(signals) == []


def test_no_sae_for_planned_admission_for_procedure() -> None:
    """SAE-01 excludes a protocol-planned admission for UC-MSC/PE (RULES.md SAE-01 [DC])."""
    pid = unique("P")
    fact = ae_reported(pid, criteria=(S.HOSPITALISATION,), planned=True)

    _, signals = replay([enrolled(pid), fact])

    assert sae_signals(signals) == []


def test_sae_when_planned_admission_has_another_criterion() -> None:
    """SAE-01 still fires when a planned admission AE meets another criterion (life-threatening)."""
    pid = unique("P")
    fact = ae_reported(pid, criteria=(S.HOSPITALISATION, S.LIFE_THREATENING), planned=True)

    _, signals = replay([enrolled(pid), fact])

    assert [s.payload.values["seriousness_criteria"] for s in sae_signals(signals)] == [
        "life_threatening"
    ]


def test_sae_raised_once_when_update_makes_ae_serious() -> None:
    """SAE-01 fires on the update that first makes a non-serious AE serious."""
    pid = unique("P")
    report = ae_reported(pid, ae_ref="AE-7")
    update = ae_updated(pid, ae_ref="AE-7", criteria=(S.HOSPITALISATION,))

    _, signals = replay([enrolled(pid), report, update])

    assert [s.causation_id for s in sae_signals(signals)] == [update.event_id]
    assert sae_signals(signals)[0].payload.evidence_event_ids == (report.event_id, update.event_id)


def test_second_update_does_not_refire() -> None:
    """SAE-01 pages once per AE: a worsening update is a U1 follow-up, a downgrade nothing."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        ae_reported(pid, ae_ref="AE-1", criteria=(S.HOSPITALISATION,)),
        ae_updated(pid, ae_ref="AE-1", criteria=(S.HOSPITALISATION, S.LIFE_THREATENING), grade=4),
        ae_updated(pid, ae_ref="AE-1", criteria=(S.HOSPITALISATION,), grade=3),
    ]

    _, signals = replay(facts)

    assert [(s.payload.urgency, s.causation_id) for s in sae_signals(signals)] == [
        (Urgency.U0, facts[1].event_id),
        (Urgency.U1, facts[2].event_id),
    ]
    assert sae_signals(signals)[1].payload.values["case_update"] == (
        "new criterion life_threatening,CTCAE grade 2 -> 4"
    )


def test_each_ae_fires_separately() -> None:
    """SAE-01 fires once per ae_ref: two serious AEs give two signals."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        ae_reported(pid, ae_ref="AE-1", criteria=(S.HOSPITALISATION,)),
        ae_reported(pid, ae_ref="AE-2", criteria=(S.DISABILITY,)),
    ]

    _, signals = replay(facts)

    assert [s.payload.values["ae_ref"] for s in sae_signals(signals)] == ["AE-1", "AE-2"]


def test_rules_md_vector_awareness_plus_24_hours() -> None:
    """RULES.md §1 test vector (a): awareness 2024-03-01T10:00Z → sponsor due 2024-03-02T10:00Z."""
    pid = unique("P")
    awareness = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    fact = ae_reported(pid, criteria=(S.HOSPITALISATION,), awareness_at=awareness)

    _, signals = replay([enrolled(pid), fact])

    signal = sae_signals(signals)[0]
    assert signal.payload.reporting_deadline == datetime(2024, 3, 2, 10, 0, tzinfo=UTC)
    assert signal.payload.deadline_label == "sponsor report (24 h, ICH E6(R2) 4.11.1)"


def test_deadline_from_recorded_at_without_awareness() -> None:
    """SAE-01's 24 h clock starts when safetymon learned of the AE if awareness is missing."""
    pid = unique("P")
    recorded = T0 + timedelta(hours=3)
    fact = ae_reported(pid, criteria=(S.HOSPITALISATION,), env={"recorded_at": recorded})

    _, signals = replay([enrolled(pid), fact])

    assert sae_signals(signals)[0].payload.reporting_deadline == recorded + timedelta(hours=24)


def test_sae_signal_routing_and_envelope() -> None:
    """SAE-01 is U0 to investigator and safety officer, traced to its trigger, times from it."""
    pid = unique("P")
    fact = ae_reported(pid, criteria=(S.HOSPITALISATION,))

    _, signals = replay([enrolled(pid), fact])

    signal = sae_signals(signals)[0]
    assert signal.payload.urgency is Urgency.U0
    assert signal.payload.recipients == (Role.INVESTIGATOR, Role.SAFETY_OFFICER)
    assert signal.payload.arm == "B"
    assert (signal.occurred_at, signal.recorded_at) == (fact.occurred_at, fact.recorded_at)
    assert (signal.source, signal.actor) == ("rules", "safetymon-rules")
    assert signal.source_ref == f"SAE-01:{fact.event_id}"
    assert signal.correlation_id == fact.event_id


def test_sae_before_enrolment_still_evaluated() -> None:
    """A fact arriving before the participant's enrolment is evaluated (arm unknown, site known)."""
    pid = unique("P")
    fact = ae_reported(pid, criteria=(S.HOSPITALISATION,), env={"site_id": "S07"})

    _, signals = replay([fact])

    signal = sae_signals(signals)[0]
    assert (signal.payload.arm, signal.site_id) == (None, "S07")
