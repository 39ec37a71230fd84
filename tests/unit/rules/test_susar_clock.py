"""SUSAR-01: the 7- and 15-day report clocks to the authority (ICH E2A; EU CT Reg. 536/2014
Art. 42), driven by ClockTicked facts and closed by SUSARReportedToAuthority."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from schemas import (
    Role,
    SAEReportedToSponsor,
    SeriousnessCriterion,
    SUSARReportedToAuthority,
    Urgency,
)
from services.rules.core.fold import replay
from services.rules.core.state import ParticipantState
from services.rules.core.state_codec import decode_state, encode_state

from .factories import ae_reported, enrolled, envelope, unique
from .test_sae_clock import tick

S = SeriousnessCriterion
AWARE = datetime.fromisoformat("2024-03-01T10:00:00+00:00")  # day 0
DAY7 = AWARE + timedelta(days=7)
DAY15 = AWARE + timedelta(days=15)
SUSPECTED = {"relatedness": "probable", "expectedness": "unexpected", "awareness_at": AWARE}


def susar(pid: str, *criteria: SeriousnessCriterion, ref: str = "AE-1") -> Any:
    return ae_reported(pid, ae_ref=ref, criteria=criteria, env={"at": AWARE}, **SUSPECTED)


def reported(pid: str, report: str, at: datetime, ref: str = "AE-1") -> SUSARReportedToAuthority:
    return SUSARReportedToAuthority(
        **envelope(pid, at=at), payload={"ae_ref": ref, "report": report}
    )


def ticks(*moments: datetime) -> list[Any]:
    return [tick(m) for m in moments]


def clock_signals(signals: Any) -> list[tuple[str, Urgency, tuple[Role, ...]]]:
    return [
        (str(s.payload.values["clock"]), s.payload.urgency, s.payload.recipients)
        for s in signals
        if s.payload.rule_id == "SUSAR-01"
    ]


SO = (Role.SAFETY_OFFICER,)
SO_INV = (Role.SAFETY_OFFICER, Role.INVESTIGATOR)


def test_a_life_threatening_susar_runs_a_7_and_a_15_day_clock() -> None:
    pid = unique("P")
    moments = [
        DAY7 - timedelta(hours=49),
        DAY7 - timedelta(hours=48),
        DAY7,
        DAY15 - timedelta(hours=48),
        DAY15,
        DAY15 + timedelta(days=1),
    ]

    _, signals = replay([enrolled(pid), susar(pid, S.LIFE_THREATENING), *ticks(*moments)])

    assert clock_signals(signals) == [
        ("initial_reminder", Urgency.U1, SO),
        ("initial_overdue", Urgency.U0, SO_INV),
        ("complete_reminder", Urgency.U1, SO),
        ("complete_overdue", Urgency.U0, SO_INV),
    ]
    due = [s.payload.reporting_deadline for s in signals if s.payload.rule_id == "SUSAR-01"]
    assert due == [DAY7, DAY7, DAY15, DAY15]


def test_any_other_susar_runs_only_the_15_day_clock() -> None:
    pid = unique("P")

    moments = (DAY7, DAY15 - timedelta(hours=24), DAY15)

    _, signals = replay([enrolled(pid), susar(pid, S.HOSPITALISATION), *ticks(*moments)])

    assert clock_signals(signals) == [
        ("complete_reminder", Urgency.U1, SO),
        ("complete_overdue", Urgency.U0, SO_INV),
    ]


def test_the_initial_report_closes_the_7_day_clock_and_the_complete_report_both() -> None:
    pid = unique("P")
    facts = [
        enrolled(pid),
        susar(pid, S.DEATH),
        reported(pid, "initial", AWARE + timedelta(days=3)),
        *ticks(DAY7, DAY15 - timedelta(hours=1)),
        reported(pid, "complete", DAY15 - timedelta(minutes=30)),
        *ticks(DAY15, DAY15 + timedelta(days=2)),
    ]

    states, signals = replay(facts)

    assert clock_signals(signals) == [("complete_reminder", Urgency.U1, SO)]
    assert next(iter(states.values())).susar_clocks == ()


def test_a_complete_report_before_the_clock_opens_keeps_it_closed() -> None:
    pid = unique("P")
    facts = [enrolled(pid), reported(pid, "complete", AWARE), susar(pid, S.LIFE_THREATENING)]

    states, signals = replay([*facts, *ticks(DAY7, DAY15)])

    assert clock_signals(signals) == []
    assert next(iter(states.values())).susar_clocks == ()


def test_a_tick_reaches_a_participant_whose_only_open_clock_is_a_susar_clock() -> None:
    """The SAE-02 clock closes on the sponsor report; the SUSAR clocks must still tick."""
    pid = unique("P")
    sponsor = {"ae_ref": "AE-1"}
    facts = [
        enrolled(pid),
        susar(pid, S.HOSPITALISATION),
        SAEReportedToSponsor(**envelope(pid, at=AWARE + timedelta(hours=2)), payload=sponsor),
    ]
    states, _ = replay(facts)
    state: ParticipantState = next(iter(states.values()))
    assert (state.sae_clocks, len(state.susar_clocks), state.has_open_clock) == ((), 1, True)

    _, signals = replay([*facts, *ticks(DAY15)])

    assert clock_signals(signals) == [("complete_overdue", Urgency.U0, SO_INV)]


def test_state_with_susar_clocks_round_trips() -> None:
    pid = unique("P")
    states, _ = replay(
        [enrolled(pid), susar(pid, S.LIFE_THREATENING), reported(pid, "initial", AWARE)]
    )
    state = next(iter(states.values()))

    assert [(c.report, c.due_at) for c in state.susar_clocks] == [("complete", DAY15)]
    assert decode_state(encode_state(state)) == state
    assert encode_state(decode_state(encode_state(state))) == encode_state(state)
