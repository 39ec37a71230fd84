"""Dedupe keys are scoped by trial and site; a reused key with other content is a conflict.

Runs the ingest use-case against a real DuckDB event log file (no NATS: the relay is only
handed the new entries).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog.testing

from services.ingest.adapters.duckdb_log import DuckDBEventLog
from services.ingest.app import Ingest, Relay
from services.ingest.core.accept import accept
from services.ingest.core.chain import Entry
from services.ingest.core.dedupe import dedupe_key, same_submission
from tests.factories import enrolment, sae, unique

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


class _Clock:
    def now(self) -> datetime:
        return NOW


class _NoPublisher:
    async def publish(self, entries: Sequence[Entry]) -> None:  # pragma: no cover - never run
        raise AssertionError("the relay is not started in these tests")


@pytest.fixture
async def ingest(tmp_path: Path) -> AsyncIterator[tuple[Ingest, DuckDBEventLog]]:
    log = DuckDBEventLog(tmp_path / "ingest.duckdb")
    log.open()
    relay = Relay(log=log, publisher=_NoPublisher())
    yield Ingest(log=log, relay=relay, clock=_Clock()), log
    log.close()


async def _enrol(ingest: Ingest, site: str) -> str:
    participant = unique(f"P-{site}")
    [outcome] = await ingest.submit(
        [enrolment(site_id=site, participant_id=participant)], actor="token:t", site=site
    )
    assert outcome.status == "accepted"
    return participant


def _ae(site: str, participant: str, ref: str, **payload: Any) -> dict[str, Any]:
    return sae(ref, site_id=site, participant_id=participant, source_ref=ref, payload=payload)


async def test_another_sites_key_does_not_suppress_this_sites_sae(ingest) -> None:
    """S01 posting S02's source_ref first must not turn S02's real SAE into a duplicate."""
    service, _ = ingest
    p1, p2 = await _enrol(service, "S01"), await _enrol(service, "S02")
    ref = f"AE:{p2}:AE2"
    [planted] = await service.submit([_ae("S01", p1, ref)], actor="token:s01", site="S01")

    [real] = await service.submit([_ae("S02", p2, ref)], actor="token:s02", site="S02")

    assert planted.status == "accepted"
    assert real.status == "accepted"
    assert real.event_id != planted.event_id
    assert real.seq == planted.seq + 1  # stored, so rules and notify will see it


async def test_an_exact_repeat_in_the_same_scope_is_a_duplicate(ingest) -> None:
    """Idempotent resubmission: same content, same site -> duplicate with the first id."""
    service, _ = ingest
    p2 = await _enrol(service, "S02")
    item = _ae("S02", p2, unique("AE"))
    [first] = await service.submit([item], actor="token:a", site="S02")

    [again] = await service.submit([dict(item)], actor="token:b", site="S02")

    assert (again.status, again.event_id, again.errors) == ("duplicate", first.event_id, ())


async def test_a_key_reused_with_other_content_is_rejected_and_the_original_kept(ingest) -> None:
    service, log = ingest
    p2 = await _enrol(service, "S02")
    ref = unique("AE")
    [first] = await service.submit([_ae("S02", p2, ref, term="Sepsis")], actor="a", site="S02")
    head = await log.head()

    with structlog.testing.capture_logs() as logs:
        outcomes = await service.submit(
            [enrolment(site_id="S02", participant_id=unique("P")),
             _ae("S02", p2, ref, term="Pneumonia")],
            actor="b", site="S02",
        )  # fmt: skip

    assert [o.status for o in outcomes] == ["accepted", "rejected"]
    [error] = outcomes[1].errors
    assert error.field == "source_ref"
    assert "index 1" in error.reason
    assert "different content" in error.reason
    assert outcomes[1].event_id is None
    assert (await log.head()).seq == head.seq + 1  # only the enrolment was appended
    stored = await log.existing(
        [dedupe_key(accept(_ae("S02", p2, ref), recorded_at=NOW, actor="x").fact)]
    )  # type: ignore[union-attr]
    assert [known.event_id for known in stored.values()] == [first.event_id]
    assert b"Sepsis" in next(iter(stored.values())).content
    conflicts = [e for e in logs if e["event"] == "facts_conflicting_rejected"]
    assert conflicts and conflicts[0]["indexes"] == [1]
    assert "Pneumonia" not in repr(logs) and "Sepsis" not in repr(logs)
    assert ref not in repr(logs)


async def test_a_key_repeated_in_one_batch_with_other_content_is_a_conflict(ingest) -> None:
    service, _ = ingest
    p1 = await _enrol(service, "S01")
    ref = unique("AE")

    outcomes = await service.submit(
        [_ae("S01", p1, ref, term="Sepsis"), _ae("S01", p1, ref, term="Sepsis"),
         _ae("S01", p1, ref, term="Pneumonia")],
        actor="a", site="S01",
    )  # fmt: skip

    assert [o.status for o in outcomes] == ["accepted", "duplicate", "rejected"]
    assert outcomes[1].event_id == outcomes[0].event_id
    assert outcomes[2].errors[0].field == "source_ref"
    assert "index 2" in outcomes[2].errors[0].reason


async def test_an_admin_submission_shares_the_scope_of_the_facts_site(ingest) -> None:
    """An admin (no site) resending a site's record gets the duplicate, not a second fact."""
    service, _ = ingest
    p1 = await _enrol(service, "S01")
    item = _ae("S01", p1, unique("AE"))
    [first] = await service.submit([item], actor="token:s01", site="S01")

    [again] = await service.submit([dict(item)], actor="token:admin", site=None)

    assert (again.status, again.event_id) == ("duplicate", first.event_id)


def test_what_is_compared_leaves_out_what_ingest_assigns() -> None:
    """recorded_at, actor and event_id differ per submission; the source's content does not."""
    item = sae(site_id="S01", participant_id="P-1", source_ref="AE:P-1:1")
    first = accept(item, recorded_at=NOW, actor="token:a")
    later = accept(item, recorded_at=datetime(2025, 1, 1, tzinfo=UTC), actor="token:b")
    other = accept({**item, "occurred_at": "2024-03-02T08:00:00+08:00"}, recorded_at=NOW,
                   actor="token:a")  # fmt: skip
    stored = b'{"not":"a fact"}'

    assert same_submission(_content(first.wire), later.wire)  # type: ignore[union-attr]
    assert not same_submission(_content(first.wire), other.wire)  # type: ignore[union-attr]
    assert not same_submission(stored, first.wire)  # type: ignore[union-attr]


def test_an_optional_field_added_later_does_not_make_an_old_record_differ() -> None:
    """Rows written before a new optional field existed lack it; null equals absent."""
    item = sae(site_id="S01", participant_id="P-1", source_ref="AE:P-1:2")
    wire = accept(item, recorded_at=NOW, actor="a").wire  # type: ignore[union-attr]
    old = {k: v for k, v in wire.items() if v is not None}

    assert "causation_id" in wire
    assert same_submission(_content(old), {**wire, "causation_id": None})


def test_the_key_holds_trial_and_site() -> None:
    fact = accept(sae(site_id="S02", participant_id="P-9", source_ref="r"), recorded_at=NOW,
                  actor="a").fact  # type: ignore[union-attr]  # fmt: skip

    assert dedupe_key(fact) == ("NCT01724398", "S02", "edc", "r")


def _content(wire: dict[str, Any]) -> bytes:
    from schemas import canonical_bytes

    return canonical_bytes(wire)
