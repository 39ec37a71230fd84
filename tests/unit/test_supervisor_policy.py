"""The supervisor's restart policy: exponential backoff, reset after a stable run, give up."""

from __future__ import annotations

from safetymon.supervisor import Restart, RestartPolicy

POLICY = RestartPolicy(first_delay=0.5, max_delay=30.0, stable_after=60.0, give_up_after=10)


def _delays(policy: RestartPolicy, runs: list[float]) -> list[float | None]:
    failures, delays = 0, []
    for ran_for in runs:
        decision = policy.after_exit(failures, ran_for=ran_for)
        failures = decision.failures
        delays.append(decision.delay)
    return delays


def test_first_quick_exit_restarts_after_the_first_delay() -> None:
    """A child that dies at once is restarted after half a second, not in a tight loop."""
    decision = POLICY.after_exit(0, ran_for=0.1)

    assert decision == Restart(failures=1, delay=0.5)


def test_delay_doubles_with_each_quick_exit_up_to_the_cap() -> None:
    """Consecutive quick deaths back off 0.5, 1, 2, ... seconds, never past 30 s."""
    delays = _delays(POLICY, [1.0] * 9)

    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_stable_run_resets_the_backoff() -> None:
    """A child that ran a minute before dying is restarted quickly again, like a first exit."""
    delays = _delays(POLICY, [1.0, 1.0, 1.0, 60.0, 1.0])

    assert delays == [0.5, 1.0, 2.0, 0.5, 1.0]


def test_gives_up_after_too_many_quick_exits_in_a_row() -> None:
    """The eleventh quick death in a row gives up (the stack then stops, visibly)."""
    delays = _delays(POLICY, [0.2] * 11)

    assert delays[:10] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
    assert delays[10] is None


def test_a_stable_run_just_before_the_limit_keeps_the_child() -> None:
    """Ten quick deaths, one long run, one more death: restarted, the count starts over."""
    delays = _delays(POLICY, [0.2] * 10 + [120.0])

    assert delays[-1] == 0.5


def test_run_just_short_of_stable_still_counts_as_a_failure() -> None:
    """The stable threshold is inclusive: 59.9 s still backs off, 60 s resets."""
    just_short = POLICY.after_exit(3, ran_for=59.9)
    stable = POLICY.after_exit(3, ran_for=60.0)

    assert (just_short, stable) == (Restart(4, 4.0), Restart(1, 0.5))
