"""SAE-05: a U0 clinical signal without an SAE-01 within 24 h (RULES.md §1)."""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas import LabResultRecorded, Role, SeriousnessCriterion, Urgency
from services.rules.core.fold import replay

from .factories import T0, ae_reported, enrolled, envelope, hours_after, unique, vitals

ENROLLED = T0 - timedelta(days=1)
INV_SO = (Role.INVESTIGATOR, Role.SAFETY_OFFICER)
SERIOUS = (SeriousnessCriterion.HOSPITALISATION,)


def sodium(pid: str, value: float, at: datetime = T0, **env: object) -> LabResultRecorded:
    """A sodium result (LLN 135): 119 mmol/L is CTCAE grade 4 -> LAB-G4 at U0."""
    result = {
        "value": value,
        "unit": "mmol/L",
        "normalised_value": value,
        "normalised_unit": "mmol/L",
    }
    payload = {"loinc": "2951-2", "result": result, "normalised_reference_low": 135.0}
    return LabResultRecorded(**envelope(pid, at=at, **env), payload=payload)  # type: ignore[arg-type]


def later(pid: str, hours: float, **env: object) -> object:
    """Any later fact of the participant (a heart rate) at T0 + `hours`."""
    return vitals(pid, heart_rate=80, env={"at": hours_after(hours), **env})


def sae05(facts: list) -> list:
    _, signals = replay(facts)
    return [s for s in signals if s.payload.rule_id == "SAE-05"]


def test_u0_signal_without_sae_after_24_h_is_reminded_u1() -> None:
    """A LAB-G4 (U0) with no SAE-01 by a fact 24 h later -> SAE-05 U1 to INV and SO."""
    pid = unique("P")
    cause = sodium(pid, 119)

    (signal,) = sae05([enrolled(pid, at=ENROLLED), cause, later(pid, 24)])

    assert (signal.payload.urgency, signal.payload.recipients) == (Urgency.U1, INV_SO)
    assert signal.payload.values["overdue_rules"] == "LAB-G4"
    assert signal.payload.evidence_event_ids == (cause.event_id,)


def test_not_before_24_h_and_only_once() -> None:
    """Boundary: nothing at 23 h 59 min; one reminder at 24 h; no repeat afterwards."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        sodium(pid, 119),
        later(pid, 24 - 1 / 60),
        later(pid, 24),
        later(pid, 48),
    ]

    _, signals = replay(facts)
    reminders = [s for s in signals if s.payload.rule_id == "SAE-05"]

    assert len(reminders) == 1
    assert reminders[0].causation_id == facts[3].event_id


def test_sae01_within_24_h_prevents_the_reminder() -> None:
    """An SAE-01 recorded for the participant within 24 h of the U0 signal satisfies it."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        sodium(pid, 119),
        ae_reported(pid, criteria=SERIOUS, env={"at": hours_after(6)}),
        later(pid, 30),
    ]

    assert sae05(facts) == []


def test_sae01_reported_late_for_the_same_clinical_time_counts() -> None:
    """An SAE whose onset is within 24 h of the signal counts even if it is recorded later."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        sodium(pid, 119),
        ae_reported(
            pid, criteria=SERIOUS, env={"at": hours_after(1), "recorded_at": hours_after(30)}
        ),
    ]

    assert sae05(facts) == []


def test_sae01_outside_24_h_does_not_count() -> None:
    """An SAE with onset and recording both > 24 h after the signal comes too late."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        sodium(pid, 119),
        ae_reported(pid, criteria=SERIOUS, env={"at": hours_after(30)}),
    ]

    assert [s.payload.values["overdue_rules"] for s in sae05(facts)] == ["LAB-G4"]


def test_a_late_recorded_fact_can_be_the_clock() -> None:
    """A later fact counts by recording time too: clinical time earlier, recorded 24 h on."""
    pid = unique("P")
    facts = [
        enrolled(pid, at=ENROLLED),
        sodium(pid, 119),
        later(pid, 2, recorded_at=hours_after(25)),
    ]

    assert len(sae05(facts)) == 1


def test_u1_signals_are_not_reminded() -> None:
    """Only U0 serious-signal rules count: a LAB-G3 (U1) is not reminded."""
    pid = unique("P")

    assert sae05([enrolled(pid, at=ENROLLED), sodium(pid, 122), later(pid, 48)]) == []


def test_no_later_fact_means_no_reminder() -> None:
    """Documented limitation: without a later fact (no clock tick) nothing is reminded."""
    pid = unique("P")

    assert sae05([enrolled(pid, at=ENROLLED), sodium(pid, 119)]) == []


def test_other_participants_facts_do_not_trigger_it() -> None:
    """The reminder is per participant: another participant's later fact is no clock."""
    pid, other = unique("P"), unique("P")

    assert sae05([enrolled(pid, at=ENROLLED), sodium(pid, 119), later(other, 48)]) == []
