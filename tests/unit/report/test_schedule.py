"""The DSMB schedule: monthly slots, and ad hoc reports on newly triggered stopping rules."""

from __future__ import annotations

from datetime import UTC, datetime

from services.report.core.config import Schedule
from services.report.core.schedule import Due, ScheduleState, latest_slot, plan

MONTHLY = Schedule(day_of_month=1, hour_utc=6, ad_hoc_within_hours=24)


def _at(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=UTC)


def test_latest_slot_is_this_months_once_passed_else_last_months() -> None:
    """Monthly at day 1, 06:00 UTC."""
    assert latest_slot(_at(5, 1, 6), MONTHLY) == _at(5, 1, 6)
    assert latest_slot(_at(5, 1, 5), MONTHLY) == _at(4, 1, 6)
    assert latest_slot(datetime(2024, 1, 1, tzinfo=UTC), MONTHLY) == datetime(
        2023, 12, 1, 6, tzinfo=UTC
    )


def test_first_tick_issues_the_periodic_report_then_nothing_until_next_month() -> None:
    """A passed slot is reported once."""
    due, state = plan(_at(5, 10), ScheduleState(), frozenset(), MONTHLY)
    again, state_again = plan(_at(5, 20), state, frozenset(), MONTHLY)
    june, _ = plan(_at(6, 1, 7), state_again, frozenset(), MONTHLY)

    assert due == (Due("dsmb_periodic", _at(5, 1, 6), "monthly report for 2024-05"),)
    assert again == ()
    assert june == (Due("dsmb_periodic", _at(6, 1, 6), "monthly report for 2024-06"),)


def test_a_new_trigger_gets_an_ad_hoc_report_at_once_and_only_once() -> None:
    """STOP trigger → ad hoc report as of the tick; the same trigger is not announced twice."""
    state = ScheduleState(last_periodic=_at(5, 1, 6))

    due, state = plan(_at(5, 12, 3), state, frozenset({"STOP-03/B"}), MONTHLY)
    repeat, state = plan(_at(5, 12, 4), state, frozenset({"STOP-03/B"}), MONTHLY)
    another, state = plan(_at(5, 13), state, frozenset({"STOP-03/B", "STOP-01/C"}), MONTHLY)

    assert due == (Due("dsmb_ad_hoc", _at(5, 12, 3), "newly triggered: STOP-03/B"),)
    assert repeat == ()
    assert another == (Due("dsmb_ad_hoc", _at(5, 13), "newly triggered: STOP-01/C"),)


def test_a_trigger_that_clears_and_returns_is_announced_again() -> None:
    state = ScheduleState(last_periodic=_at(5, 1, 6), announced=frozenset({"STOP-02/D"}))

    cleared, state = plan(_at(5, 14), state, frozenset(), MONTHLY)
    back, _ = plan(_at(5, 15), state, frozenset({"STOP-02/D"}), MONTHLY)

    assert cleared == ()
    assert [d.kind for d in back] == ["dsmb_ad_hoc"]


def test_periodic_and_ad_hoc_on_the_same_tick() -> None:
    due, state = plan(_at(6, 2), ScheduleState(last_periodic=_at(5, 1, 6)),
                      frozenset({"STOP-04/B"}), MONTHLY)  # fmt: skip

    assert [d.kind for d in due] == ["dsmb_periodic", "dsmb_ad_hoc"]
    assert state == ScheduleState(last_periodic=_at(6, 1, 6), announced=frozenset({"STOP-04/B"}))
