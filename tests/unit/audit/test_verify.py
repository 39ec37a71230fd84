"""The pure chain verifier: intact chains verify; each tampering is located and classified."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import GENESIS_HASH, canonical_bytes
from services.audit.core.verify import verify_chain
from tests.unit.audit import factories as f

N = 10
CHAINS = {"event_log": f.event_log, "notify_audit_trail": f.audit_trail}


@pytest.fixture(params=sorted(CHAINS))
def build(request: pytest.FixtureRequest):
    return CHAINS[request.param]


def test_an_intact_chain_verifies_with_its_count_and_head(build) -> None:
    rows = build(N)

    report = verify_chain("log", rows, f.expected(rows))

    assert report.ok
    assert (report.count, report.verified, report.head) == (N, N, rows[-1].hash)


def test_an_empty_chain_verifies_at_the_genesis_hash() -> None:
    report = verify_chain("log", [])

    assert report.ok
    assert report.head == GENESIS_HASH


def test_one_flipped_byte_is_edited_at_that_seq(build) -> None:
    rows = build(N)

    report = verify_chain("log", f.flip_byte(rows, 5), f.expected(rows))

    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq, report.verified) == ("edited", 5, 4)
    assert report.head == rows[3].hash
    assert "next entry still links" in report.problem.detail


def test_a_deleted_entry_is_deleted_at_its_position(build) -> None:
    rows = build(N)

    report = verify_chain("log", f.delete(rows, 5), f.expected(rows))

    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq, report.problem.position) == ("deleted", 5, 4)


def test_a_deleted_entry_with_the_seqs_renumbered_is_still_deleted(build) -> None:
    rows = build(N)

    report = verify_chain("log", f.delete(rows, 5, renumber=True), f.expected(rows))

    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("deleted", 5)


def test_two_swapped_entries_are_reordered(build) -> None:
    rows = build(N)

    report = verify_chain("log", f.swap(rows, 4), f.expected(rows))

    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("reordered", 4)


def test_two_swapped_entries_with_the_seqs_renumbered_are_reordered(build) -> None:
    rows = build(N)

    report = verify_chain("log", f.swap(rows, 4, renumber=True), f.expected(rows))

    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("reordered", 4)


def test_a_truncated_tail_is_truncated_against_the_manifest(build) -> None:
    rows = build(N)

    report = verify_chain("log", rows[:7], f.expected(rows))

    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq, report.verified) == ("truncated", 8, 7)


def test_a_truncated_tail_is_invisible_without_the_manifest(build) -> None:
    """Why the manifest records the head: a prefix of a chain is itself a valid chain."""
    rows = build(N)

    assert verify_chain("log", rows[:7]).ok


def test_a_forged_entry_chained_in_is_inserted(build) -> None:
    rows = build(N)

    report = verify_chain("log", f.insert_forged(rows, 3), f.expected(rows))

    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq, report.problem.position) == ("inserted", 4, 3)


def test_a_duplicated_entry_is_inserted(build) -> None:
    rows = build(N)
    doubled = [*rows[:5], rows[4], *rows[5:]]

    report = verify_chain("log", doubled, f.expected(rows))

    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("inserted", 5)


def test_entries_appended_after_the_manifest_head_are_inserted(build) -> None:
    rows = build(N + 2)

    report = verify_chain("log", rows, f.expected(rows[:N]))

    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("inserted", N + 1)


def test_an_entry_edited_and_rehashed_is_edited_where_the_next_link_breaks(build) -> None:
    rows = build(N)
    forged = canonical_bytes({"event_type": "rewritten"})

    report = verify_chain("log", f.rehash_from(rows, 5, forged), f.expected(rows))

    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq, report.verified) == ("edited", 5, 4)
    assert "re-hashed" in report.problem.detail


def test_the_last_entry_edited_and_rehashed_is_caught_by_the_manifest_head(build) -> None:
    rows = build(N)
    forged = canonical_bytes({"event_type": "rewritten"})

    report = verify_chain("log", f.rehash_from(rows, N, forged), f.expected(rows))

    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("edited", N)


def test_a_queryable_column_that_disagrees_with_the_content_is_edited(build) -> None:
    rows = build(N)
    row = rows[2]
    column = next(iter(row.columns))
    rows[2] = dataclasses.replace(row, columns={**row.columns, column: "P-999"})

    report = verify_chain("log", rows, f.expected(rows))

    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("edited", 3)
    assert column in report.problem.detail


def test_an_altered_prev_hash_column_is_edited_at_that_entry() -> None:
    rows = f.event_log(N)
    rows[5] = dataclasses.replace(rows[5], prev_hash="f" * 64)

    report = verify_chain("log", rows, f.expected(rows))

    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("edited", 6)


def test_an_audit_trail_wire_edit_is_edited_at_that_seq() -> None:
    rows = f.audit_trail(N)

    report = verify_chain("trail", f.edit_wire(rows, 6), f.expected(rows))

    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("edited", 6)


def test_audit_trail_chain_fields_inside_the_wire_must_match_the_row() -> None:
    rows = f.audit_trail(N)
    rows[2] = dataclasses.replace(rows[2], claimed=(3, rows[2].prev_hash, "0" * 64))

    report = verify_chain("trail", rows, f.expected(rows))

    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("edited", 3)
    assert "wire form" in report.problem.detail


@pytest.mark.slow
@given(n=st.integers(1, 25), data=st.data())
def test_any_single_byte_edit_is_located_at_exactly_its_seq(n: int, data: st.DataObject) -> None:
    """Whatever entry is touched, verification stops at that entry and calls it edited."""
    rows = f.event_log(n)
    seq = data.draw(st.integers(1, n))

    report = verify_chain("log", f.flip_byte(rows, seq), f.expected(rows))

    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq, report.verified) == ("edited", seq, seq - 1)


@given(n=st.integers(2, 25), data=st.data())
def test_any_single_deletion_is_located_at_exactly_its_seq(n: int, data: st.DataObject) -> None:
    """A deleted entry, renumbered or not, is reported deleted at its seq (the tail: truncated)."""
    rows = f.event_log(n)
    seq = data.draw(st.integers(1, n))
    renumber = data.draw(st.booleans())

    report = verify_chain("log", f.delete(rows, seq, renumber=renumber), f.expected(rows))

    assert report.problem is not None
    kind = "truncated" if seq == n else "deleted"
    assert (report.problem.kind, report.problem.seq) == (kind, seq)
