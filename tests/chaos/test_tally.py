"""The chaos run's own checks must be able to fail: its schedule and its counting."""

from __future__ import annotations

import pytest

from tools.chaos import (
    SERVICES,
    ChaosPlan,
    Delivery,
    fault_schedule,
    tally_emails,
    tally_signals,
)


def _mail(message_id: str, *rcpts: str, possible_duplicate: bool = False) -> Delivery:
    return Delivery(message_id, rcpts, None, None, possible_duplicate, "subject")


def test_schedule_is_reproducible_and_hits_everything() -> None:
    plan = ChaosPlan(seed=42, events=1000, kills=7, batch=50)
    faults = fault_schedule(plan)
    assert faults == fault_schedule(plan)
    assert faults != fault_schedule(ChaosPlan(seed=43, events=1000, kills=7, batch=50))
    kills = [f.service for f in faults if f.kind == "kill"]
    assert len(kills) == 7
    assert set(kills) == set(SERVICES)
    assert [f.kind for f in faults].count("nats") == 1
    assert [f.kind for f in faults].count("smtp") == 1
    assert all(0 <= f.after_batch < plan.batches for f in faults)
    assert [f.after_batch for f in faults] == sorted(f.after_batch for f in faults)


def test_schedule_needs_a_kill_of_each_service() -> None:
    with pytest.raises(ValueError, match="one of each service"):
        fault_schedule(ChaosPlan(seed=1, events=100, kills=2))


def test_email_tally_finds_lost_duplicated_and_unexpected() -> None:
    expected = {("<a@x>", "so@x"), ("<a@x>", "pi@x"), ("<b@x>", "so@x")}
    deliveries = [
        _mail("<a@x>", "SO@x", "pi@x"),  # recipients compared case-insensitively
        _mail("<a@x>", "so@x", possible_duplicate=True),  # a resend
        _mail("<c@x>", "so@x"),  # nobody asked for this one
    ]
    tally = tally_emails(expected, deliveries)
    assert (tally.expected, tally.delivered) == (3, 2)
    assert tally.lost == (("<b@x>", "so@x"),)
    assert tally.duplicates == (("<a@x>", "so@x", 2),)
    assert tally.duplicated == 1
    assert tally.unexpected == (("<c@x>", "so@x"),)
    assert tally.flagged_possible_duplicate == 1
    assert (tally.in_doubt_resends, tally.unflagged_duplicated) == (1, 0)
    assert tally.problems == 3


def test_email_tally_of_a_clean_run_has_no_problem() -> None:
    tally = tally_emails({("<a@x>", "so@x")}, [_mail("<a@x>", "so@x")])
    assert (tally.delivered, tally.problems) == (1, 0)


def test_signal_tally_finds_missing_duplicated_unexpected_and_differing() -> None:
    expected = {"s1": b"one", "s2": b"two", "s3": b"three"}
    raised = [("s1", b"one"), ("s1", b"one"), ("s2", b"TWO"), ("s9", b"nine")]
    tally = tally_signals(expected, raised)
    assert (tally.expected, tally.raised) == (3, 4)
    assert tally.missing == ("s3",)
    assert tally.duplicated == ("s1",)
    assert tally.unexpected == ("s9",)
    assert tally.differing == ("s2",)
    assert tally.problems == 4
    assert tally_signals(expected, [(k, v) for k, v in expected.items()]).problems == 0


def test_email_tally_tells_unmarked_duplicates_from_in_doubt_resends() -> None:
    deliveries = [
        _mail("<a@x>", "so@x"),
        _mail("<a@x>", "so@x"),  # a second copy notify did not mark: a real double send
        _mail("<a@x>", "so@x", possible_duplicate=True),
    ]
    tally = tally_emails({("<a@x>", "so@x")}, deliveries)
    assert tally.duplicates == (("<a@x>", "so@x", 3),)
    assert (tally.duplicated, tally.in_doubt_resends, tally.unflagged_duplicated) == (2, 1, 1)
