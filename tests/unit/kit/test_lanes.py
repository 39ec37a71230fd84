"""The fair lane scheduler: per-lane order, alerts first, broadcasts in every lane's order."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kit.lanes import Lane, LaneScheduler, Step

Sched = LaneScheduler[str]


def lane(key: str, *, urgent: bool = False, scope: str = "T") -> Lane:
    return Lane(key=key, scope=scope, urgent=urgent)


def tick(scope: str = "T") -> Lane:
    return Lane(scope=scope, broadcast=True)


def run_all(sched: Sched, now: float = 0.0) -> list[list[Step[str]]]:
    groups = []
    while len(sched):
        steps = sched.next_group(now)
        assert steps, "entries remain but nothing is ready"
        sched.complete(steps)
        groups.append(steps)
    return groups


def test_an_alert_behind_a_large_backlog_goes_in_the_first_group() -> None:
    sched: Sched = LaneScheduler(max_group=256, quantum=32)
    for seq in range(1, 30_001):  # 30,000 labs of 100 other participants
        sched.add(seq, lane(f"S02-{seq % 100}"), "lab")
    sched.add(30_001, lane("S01-new", urgent=True), "sae")

    first = sched.next_group(0.0)

    assert first[0].entry.seq == 30_001
    assert len(first) <= 256


def test_an_alert_waits_for_its_own_participants_earlier_facts_only() -> None:
    sched: Sched = LaneScheduler(max_group=256, quantum=32)
    for seq in range(1, 5_001):
        sched.add(seq, lane("other"), "lab")
    for seq in range(5_001, 5_041):  # 40 earlier facts of the participant itself
        sched.add(seq, lane("X"), "lab")
    sched.add(5_041, lane("X", urgent=True), "sae")

    first = [s.entry.seq for s in sched.next_group(0.0)]

    assert first[:41] == list(range(5_001, 5_042))


def test_lanes_share_groups_in_round_robin() -> None:
    sched: Sched = LaneScheduler(max_group=64, quantum=16)
    for seq in range(1, 1_001):
        sched.add(seq, lane("big"), "x")
    sched.add(1_001, lane("small"), "y")

    groups = run_all(sched)

    assert 1_001 in {s.entry.seq for s in groups[0]}
    assert sum(1 for s in groups[0] if s.lane == "big") == 32  # two lanes: half the group each
    assert sum(1 for s in groups[1] if s.lane == "big") == 64  # alone: the whole group


def test_many_lanes_get_the_quantum_each() -> None:
    sched: Sched = LaneScheduler(max_group=64, quantum=16)
    for seq in range(1, 1_001):
        sched.add(seq, lane(f"L{seq % 10}"), "x")

    first = sched.next_group(0.0)

    assert len(first) == 64
    assert {s.lane for s in first} == {"L1", "L2", "L3", "L4"}


def test_a_failed_group_is_offered_again_and_its_lane_is_not_overtaken() -> None:
    sched: Sched = LaneScheduler(max_group=2, quantum=1)
    for seq, key in ((1, "A"), (2, "B"), (3, "A"), (4, "B")):
        sched.add(seq, lane(key), key)
    first = sched.next_group(0.0)
    assert [s.entry.seq for s in first] == [1, 2]

    delay = sched.failed(first, now=0.0, backoff=lambda n: 0.5 * n)

    assert delay == 0.5
    assert sched.next_group(0.1) == []  # 3 and 4 may not overtake 1 and 2
    assert sched.next_retry(0.1) == 0.5
    again = sched.next_group(0.5)
    assert [s.entry.seq for s in again] == [1, 2]
    assert sched.complete(again)[0].attempts == 1


def test_a_repeat_of_a_pending_message_refreshes_its_handle_only() -> None:
    sched: Sched = LaneScheduler()
    assert sched.add(7, lane("A"), "first delivery")
    assert not sched.add(7, lane("A"), "redelivery")

    (step,) = sched.next_group(0.0)

    assert step.entry.handle == "redelivery"


def test_a_broadcast_waits_for_every_earlier_message_of_its_scope_only() -> None:
    sched: Sched = LaneScheduler(max_group=2, quantum=1)
    sched.add(1, lane("A"), "a1")
    sched.add(2, lane("B", scope="U"), "u1")  # another trial: does not hold T's tick
    sched.add(3, lane("A"), "a2")
    sched.add(4, tick(), "tick")
    sched.add(5, lane("C"), "c1")

    first = sched.next_group(0.0)
    assert [(s.entry.seq, s.lane, s.final) for s in first] == [(1, "A", True), (2, "B", True)]
    sched.complete(first)
    second = sched.next_group(0.0)
    # C's turn comes first (round-robin). C's fact follows the tick in the log, so the tick
    # is replayed into C's lane first; the tick itself completes once A's fact 3 (before it)
    # is in hand, after it in the same group.
    assert [(s.entry.seq, s.lane, s.final) for s in second] == [
        (4, "C", False),
        (5, "C", True),
        (3, "A", True),
        (4, None, True),
    ]


def test_stale_entries_are_reported_once_per_period() -> None:
    sched: Sched = LaneScheduler()
    sched.add(1, lane("A"), "h", now=0.0)

    assert [e.seq for e in sched.stale(now=11.0, older_than=10.0)] == [1]
    assert sched.stale(now=12.0, older_than=10.0) == []


# -- the property: whatever the interleaving and failures, each lane sees its own messages
# and its scope's broadcasts exactly once, in log order.

messages = st.lists(
    st.tuples(st.sampled_from(["A", "B", "C", "D", "tick", "loose"]), st.booleans()),
    min_size=1,
    max_size=60,
)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(messages, st.integers(1, 8), st.integers(1, 4), st.lists(st.booleans(), max_size=40))
def test_every_lane_sees_its_log_in_order_once(  # noqa: PLR0912 - the simulated handler
    spec: list[tuple[str, bool]], max_group: int, quantum: int, failures: list[bool]
) -> None:
    sched: Sched = LaneScheduler(max_group=max_group, quantum=quantum)
    lanes = ("A", "B", "C", "D")
    for seq, (kind, urgent) in enumerate(spec, start=1):
        if kind == "tick":
            sched.add(seq, tick(), kind)
        elif kind == "loose":
            sched.add(seq, Lane(), kind)
        else:
            sched.add(seq, lane(kind, urgent=urgent), kind)
    # The handler's side: a per-lane position guards broadcasts, as the rules' store does.
    position: dict[str, int] = defaultdict(int)
    seen: dict[str, list[int]] = defaultdict(list)
    completed: list[int] = []
    now, fail = 0.0, iter(failures)
    for _ in range(10_000):
        if not len(sched):
            break
        steps = sched.next_group(now)
        if not steps:
            now = sched.next_retry(now) or now + 1.0
            continue
        if next(fail, False):
            sched.failed(steps, now=now, backoff=lambda n: 1.0)
            continue
        for step in steps:
            seq, targets = step.entry.seq, [step.lane] if step.lane else list(lanes)
            if step.entry.handle == "loose":
                continue
            for key in targets:
                if key is not None and position[key] < seq:
                    seen[key].append(seq)
                    position[key] = seq
        completed.extend(e.seq for e in sched.complete(steps))
    assert sorted(completed) == list(range(1, len(spec) + 1))
    for key in lanes:
        expected = [
            seq
            for seq, (kind, _) in enumerate(spec, start=1)
            if kind in (key, "tick") and (kind == key or _lane_exists(spec, key))
        ]
        got = [s for s in seen[key] if spec[s - 1][0] == key or _lane_exists(spec, key)]
        assert got == expected, key


def _lane_exists(spec: list[tuple[str, bool]], key: str) -> bool:
    return any(kind == key for kind, _ in spec)
