"""SAE-02: the 24 h sponsor-report clock, driven by ClockTicked facts (RULES.md §1)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from schemas import ClockTicked, Role, SAEReportedToSponsor, SeriousnessCriterion, Urgency
from services.rules.core.config import SaeFollowUpConfig, TrialConfig
from services.rules.core.fold import replay

from .factories import T0, TRIAL, ae_payload, ae_reported, corrected, enrolled, envelope, unique

AWARE = datetime.fromisoformat("2024-03-01T10:00:00+00:00")
DUE = datetime.fromisoformat("2024-03-02T10:00:00+00:00")  # RULES.md §1 test vector (a)
HOSPITALISED = (SeriousnessCriterion.HOSPITALISATION,)


def tick(at: datetime, trial_id: str = TRIAL) -> ClockTicked:
    """A clock tick of the trial at `at` (as the ingest service appends it)."""
    return ClockTicked(
        event_id=uuid4(),
        trial_id=trial_id,
        occurred_at=at,
        recorded_at=at,
        source="safetymon-clock",
        source_ref=f"tick:{trial_id}:{at.isoformat()}",
        actor="safetymon-ingest",
        payload={"period_seconds": 60},
    )


def sae(pid: str, **env: Any) -> Any:
    return ae_reported(pid, ae_ref="AE-1", criteria=HOSPITALISED, awareness_at=AWARE, env=env)


def reported(pid: str, at: datetime) -> SAEReportedToSponsor:
    return SAEReportedToSponsor(**envelope(pid, at=at), payload={"ae_ref": "AE-1"})


def clock_signals(signals: Any) -> list[tuple[str, Urgency, tuple[Role, ...]]]:
    return [
        (str(s.payload.values["clock"]), s.payload.urgency, s.payload.recipients)
        for s in signals
        if s.payload.rule_id == "SAE-02"
    ]


def test_vector_awareness_10h_is_due_next_day_10h_reminder_then_overdue() -> None:
    """§1 vector (a): aware 2024-03-01T10:00Z -> due 03-02T10:00Z; U1 at due-4 h, U0 at due."""
    pid = unique("P")
    ticks = [tick(DUE - timedelta(hours=h)) for h in (5, 4, 3)] + [
        tick(DUE),
        tick(DUE + timedelta(hours=1)),
    ]

    _, signals = replay([enrolled(pid), sae(pid), *ticks])

    assert clock_signals(signals) == [
        ("reminder", Urgency.U1, (Role.INVESTIGATOR,)),
        ("overdue", Urgency.U0, (Role.INVESTIGATOR, Role.SAFETY_OFFICER)),
    ]
    reminder, overdue = [s for s in signals if s.payload.rule_id == "SAE-02"]
    assert reminder.causation_id == ticks[1].event_id
    assert overdue.causation_id == ticks[3].event_id
    assert overdue.payload.reporting_deadline == DUE


def test_report_to_sponsor_stops_the_clock() -> None:
    """SAE-02: an SAEReportedToSponsor before the deadline: a reminder at most, no overdue."""
    pid = unique("P")

    history = [
        enrolled(pid),
        sae(pid),
        tick(DUE - timedelta(hours=3)),
        reported(pid, DUE - timedelta(hours=2)),
        tick(DUE),
        tick(DUE + timedelta(hours=2)),
    ]

    _, signals = replay(history)

    assert [kind for kind, _, _ in clock_signals(signals)] == ["reminder"]


def test_report_arriving_before_the_ae_never_opens_a_clock() -> None:
    """A sponsor report recorded before the SAE itself leaves no clock to run."""
    pid = unique("P")

    states, signals = replay([enrolled(pid), reported(pid, T0), sae(pid), tick(DUE)])

    assert clock_signals(signals) == []
    assert states[(TRIAL, pid)].sae_clocks == ()


def test_first_tick_after_the_deadline_sends_only_the_overdue_alert() -> None:
    """A clock silent through due - 4 h alerts once at the next tick, with no late reminder."""
    pid = unique("P")

    _, signals = replay([enrolled(pid), sae(pid), tick(DUE + timedelta(hours=6))])

    assert [kind for kind, _, _ in clock_signals(signals)] == ["overdue"]


def test_ticks_of_another_trial_and_participants_without_clocks_change_nothing() -> None:
    """Fan-out: a tick touches only its own trial's participants with an open clock."""
    with_sae, without = unique("P"), unique("P")

    states, signals = replay(
        [enrolled(with_sae), enrolled(without), sae(with_sae), tick(DUE, trial_id="OTHER-1")]
    )

    assert clock_signals(signals) == []
    assert len(states[(TRIAL, with_sae)].sae_clocks) == 1


def test_ae_corrected_to_not_serious_closes_its_clock() -> None:
    """An SAE corrected to non-serious (SAE-01 retracted) has no sponsor deadline any more."""
    pid = unique("P")
    report = sae(pid)
    fix = corrected(pid, report.event_id, ae_payload("AE-1", awareness_at=AWARE))

    _, signals = replay([enrolled(pid), report, fix, tick(DUE)])

    assert clock_signals(signals) == []


def test_deadline_and_reminder_are_configuration() -> None:
    """`sae.sponsor_report_hours` / `reminder_before_hours` [DC] move both alerts."""
    pid = unique("P")
    config = TrialConfig(
        sae=SaeFollowUpConfig(sponsor_report_hours=12.0, reminder_before_hours=2.0)
    )
    due = AWARE + timedelta(hours=12)

    _, signals = replay(
        [enrolled(pid), sae(pid), tick(due - timedelta(hours=2)), tick(due)], config
    )

    assert [kind for kind, _, _ in clock_signals(signals)] == ["reminder", "overdue"]


def test_signal_ids_do_not_depend_on_the_tick_period() -> None:
    """Replays with different tick periods give the same SAE-02 signal ids (idempotency key)."""
    pid = unique("P")
    head = [enrolled(pid), sae(pid)]
    coarse = [tick(DUE - timedelta(hours=1)), tick(DUE + timedelta(hours=1))]
    fine = [tick(DUE - timedelta(hours=3, minutes=59)), tick(DUE + timedelta(minutes=1))]

    _, a = replay([*head, *coarse])
    _, b = replay([*head, *fine])

    ids = lambda signals: [s.event_id for s in signals if s.payload.rule_id == "SAE-02"]  # noqa: E731
    assert ids(a) == ids(b)
    assert len(ids(a)) == 2
