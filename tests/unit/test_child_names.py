"""The supervisor's children: one per service, the rules as one process per worker."""

from __future__ import annotations

from safetymon.supervisor import child_names


def test_one_rules_worker_is_the_plain_service() -> None:
    names = child_names(("ingest", "rules", "notify"))
    assert [name for name, _ in names] == ["ingest", "rules", "notify"]
    assert names[1][1][-2:] == ("--service", "rules")


def test_several_workers_are_numbered_children_with_their_id() -> None:
    names = child_names(("ingest", "rules", "notify"), rules_workers=3)
    assert [name for name, _ in names] == ["ingest", "rules-0", "rules-1", "rules-2", "notify"]
    assert names[2][1][-4:] == ("--service", "rules", "--worker", "1")
