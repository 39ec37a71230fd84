"""Partition ownership: the pure plan, the file locks, and the stable partition function."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.jetstream import subject_matches
from kit.ownership import FileLock, assignment, locked_by_another, plan, worker_lock, workers_up
from schemas import Subjects
from schemas.subjects import partition_of, rules_durable, rules_file


def test_all_workers_up_is_the_static_round_robin() -> None:
    assert assignment(frozenset({0, 1}), 4) == {0: 0, 1: 1, 2: 0, 3: 1}


def test_a_dead_workers_partitions_go_to_the_survivors_and_come_back() -> None:
    alone = plan(worker=0, alive=frozenset({0}), partitions=4, held=frozenset({0, 2}))
    assert alone.claim == (1, 3)
    assert alone.release == ()
    back = plan(worker=0, alive=frozenset({0, 1}), partitions=4, held=frozenset({0, 1, 2, 3}))
    assert back.claim == ()
    assert back.release == (1, 3)


def test_a_joining_worker_gets_a_share_and_the_others_hand_it_over() -> None:
    three = frozenset({0, 1, 2})
    joining = plan(worker=2, alive=three, partitions=6, held=frozenset())
    assert joining.claim == (2, 5)
    old = plan(worker=0, alive=three, partitions=6, held=frozenset({0, 2, 4}))
    assert old.release == (2, 4)
    assert old.claim == (3,)


def test_every_partition_has_exactly_one_owner_in_any_membership() -> None:
    for alive in ({0}, {0, 1}, {1, 2}, {0, 2, 5}):
        owners = assignment(frozenset(alive), 7)
        assert set(owners) == set(range(7))
        assert set(owners.values()) <= alive


def test_a_lock_held_elsewhere_cannot_be_taken_and_is_free_after_release(tmp_path: Path) -> None:
    path = tmp_path / "p.lock"
    first, second = FileLock(path), FileLock(path)
    assert first.try_acquire()
    assert not second.try_acquire()
    assert locked_by_another(path)
    first.release()
    assert not locked_by_another(path)
    assert second.try_acquire()
    second.release()


def test_workers_up_are_those_holding_their_lock(tmp_path: Path) -> None:
    held = FileLock(worker_lock(tmp_path, 3))
    assert held.try_acquire()
    gone = FileLock(worker_lock(tmp_path, 4))
    assert gone.try_acquire()
    gone.release()
    dead = worker_lock(tmp_path, 5)
    dead.touch()
    assert workers_up(tmp_path, me=0) == {0, 3}
    held.release()


def test_partition_is_stable_and_spreads() -> None:
    # Fixed values: a change of the function would move participants between partitions.
    assert [partition_of("NCT01724398", f"P-{i:03}", 8) for i in range(6)] == [
        partition_of("NCT01724398", f"P-{i:03}", 8) for i in range(6)
    ]
    assert partition_of("NCT01724398", "P-001", 8) == 2
    counts = [0] * 4
    for i in range(4000):
        counts[partition_of("T", f"P{i}", 4)] += 1
    assert min(counts) > 900
    assert partition_of("T", "P1", 1) == 0


def test_partition_names_and_filters() -> None:
    s = Subjects("ns")
    assert (
        s.partitioned_fact_subject("lab_result_recorded", 2, 4)
        == "ns.ingest.lab_result_recorded.v1.p2"
    )
    assert (
        s.partitioned_fact_subject("lab_result_recorded", 0, 1)
        == "ns.ingest.lab_result_recorded.v1"
    )
    assert subject_matches("ns.ingest.lab_result_recorded.v1.p2", s.partition_filter(2, 4))
    assert not subject_matches("ns.ingest.lab_result_recorded.v1.p3", s.partition_filter(2, 4))
    assert not subject_matches("ns.ingest.lab_result_recorded.v1", s.partition_filter(2, 4))
    assert subject_matches("ns.ingest.lab_result_recorded.v1", s.partition_filter(0, 1))
    assert rules_durable(0, 1) == "rules-evaluator"
    assert rules_file(1, 2) == "rules-p1-of-2.duckdb"
    with pytest.raises(ValueError, match="partition must be"):
        rules_durable(4, 4)
    with pytest.raises(ValueError, match="partitions must be"):
        partition_of("T", "P", 0)
