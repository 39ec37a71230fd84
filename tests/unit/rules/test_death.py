"""SAE-03: death, with procedure proximity (ICH E2A; RULES.md §1 SAE-03)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from schemas import (
    ClinicalFact,
    Outcome,
    Role,
    SeriousnessCriterion,
    SignalRaised,
    Treatment,
    Urgency,
)
from services.rules.core.fold import replay

from .factories import T0, ae_reported, ae_updated, died, enrolled, treated, unique


def death_signals(signals: tuple[SignalRaised, ...]) -> list[SignalRaised]:
    return [s for s in signals if s.payload.rule_id == "SAE-03"]


@pytest.mark.parametrize(
    ("route", "make"),
    [
        ("death_recorded", lambda pid: died(pid, at=T0)),
        ("ae_outcome_fatal", lambda pid: ae_reported(pid, outcome=Outcome.FATAL, grade=4)),
        ("ae_grade_5", lambda pid: ae_reported(pid, grade=5)),
        (
            "ae_seriousness_death",
            lambda pid: ae_reported(pid, criteria=(SeriousnessCriterion.DEATH,), grade=4),
        ),
    ],
)
def test_death_fires_once_per_route(route: str, make: Callable[[str], ClinicalFact]) -> None:
    """SAE-03 fires for a death record, a fatal AE outcome and a CTCAE grade 5 AE."""
    pid = unique("P")
    fact = make(pid)

    _, signals = replay([enrolled(pid), fact])

    assert [(s.causation_id, s.payload.values["death_route"]) for s in death_signals(signals)] == [
        (fact.event_id, route)
    ]


def test_death_fires_once_per_participant_across_routes() -> None:
    """SAE-03 fires once per participant even when every route reports the same death."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        ae_reported(pid, ae_ref="AE-1", grade=4),
        ae_updated(pid, ae_ref="AE-1", grade=5, outcome=Outcome.FATAL),
        died(pid, related_ae_ref="AE-1", at=T0 + timedelta(days=1)),
        ae_updated(pid, ae_ref="AE-1", grade=5, outcome=Outcome.FATAL),
    ]

    _, signals = replay(facts)

    assert [s.causation_id for s in death_signals(signals)] == [facts[2].event_id]


def test_death_routing_and_deadline() -> None:
    """SAE-03 is U0 to investigator, safety officer and DSMB chair, due 24 h after recording."""
    pid = unique("P")
    fact = died(pid, at=T0)

    _, signals = replay([enrolled(pid), fact])

    payload = death_signals(signals)[0].payload
    assert payload.urgency is Urgency.U0
    assert payload.recipients == (Role.INVESTIGATOR, Role.SAFETY_OFFICER, Role.DSMB_CHAIR)
    assert payload.reporting_deadline == fact.recorded_at + timedelta(hours=24)


@pytest.mark.parametrize("treatment", [Treatment.UC_MSC_INFUSION, Treatment.PLASMA_EXCHANGE])
def test_procedure_proximate_true_at_exactly_7_days(treatment: Treatment) -> None:
    """procedure_proximate is true for a death exactly 7 days after a UC-MSC/PE start (closed)."""
    pid = unique("P")
    procedure = treated(pid, treatment, at=T0)

    _, signals = replay([enrolled(pid), procedure, died(pid, at=T0 + timedelta(days=7))])

    payload = death_signals(signals)[0].payload
    assert payload.values["procedure_proximate"] is True
    assert payload.values["proximate_procedure"] == treatment.value
    assert procedure.event_id in payload.evidence_event_ids


def test_procedure_proximate_false_just_after_7_days() -> None:
    """procedure_proximate is false for a death 7 days and 1 second after the procedure start."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        treated(pid, Treatment.UC_MSC_INFUSION, at=T0),
        died(pid, at=T0 + timedelta(days=7, seconds=1)),
    ]

    _, signals = replay(facts)

    assert death_signals(signals)[0].payload.values["procedure_proximate"] is False


def test_procedure_proximate_false_for_death_before_procedure() -> None:
    """A procedure recorded as starting after the death does not make it procedure-proximate."""
    pid = unique("P")
    facts = [
        enrolled(pid),
        treated(pid, Treatment.PLASMA_EXCHANGE, at=T0 + timedelta(hours=1)),
        died(pid, at=T0),
    ]

    _, signals = replay(facts)

    assert death_signals(signals)[0].payload.values["procedure_proximate"] is False


def test_other_treatments_are_not_protocol_procedures() -> None:
    """Only UC-MSC infusions and plasma exchanges count for procedure proximity."""
    pid = unique("P")
    facts = [enrolled(pid), treated(pid, Treatment.VASOPRESSOR, at=T0), died(pid, at=T0)]

    _, signals = replay(facts)

    assert death_signals(signals)[0].payload.values["procedure_proximate"] is False


def test_fatal_ae_proximity_uses_onset_to_recorded_interval() -> None:
    """For a fatal AE the death lies between onset and recording: proximity is conservative."""
    pid = unique("P")
    onset, recorded = T0 - timedelta(days=1), T0 + timedelta(days=2)
    facts = [
        enrolled(pid),
        treated(pid, Treatment.PLASMA_EXCHANGE, at=T0),
        ae_reported(pid, outcome=Outcome.FATAL, env={"at": onset, "recorded_at": recorded}),
    ]

    _, signals = replay(facts)

    assert death_signals(signals)[0].payload.values["procedure_proximate"] is True
