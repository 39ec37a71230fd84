"""Property tests of the ingest contracts: any input gets an answer, never a crash or a
half-applied batch, and the log grows by exactly the events accepted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from schemas import FACT_ADAPTER, GENESIS_HASH, chain_hash
from services.ingest.adapters.duckdb_log import DuckDBEventLog
from services.ingest.app import Ingest
from services.ingest.core.accept import Accepted, Rejection, accept, event_id_for
from services.ingest.core.errors import OutOfSiteError
from tests.fuzz import counts
from tests.fuzz.strategies import EXAMPLES, any_items, sites, valid_submissions

NOW = datetime(2026, 1, 1, tzinfo=UTC)
#: The full profile runs for minutes, past the suite's per-test timeout.
pytestmark = pytest.mark.timeout(EXAMPLES["timeout_s"])


def _fuzz(kind: str) -> settings:
    return settings(
        max_examples=EXAMPLES[kind],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@_fuzz("accept")
@given(item=any_items)
# Found by this test: an unhashable event_type crashed accept() (a 500 over HTTP).
@example(item={"event_type": [], "source": "edc", "source_ref": "r"})
@example(item={"event_type": {"a": 1}})
def test_any_item_is_accepted_or_rejected_with_named_reasons(item: object) -> None:
    counts.add("accept() items")

    result = accept(item, recorded_at=NOW, actor="token:fuzz")

    assert isinstance(result, Accepted | Rejection)
    if isinstance(result, Rejection):
        assert result.errors
        assert all(error.field and error.reason for error in result.errors)
        return
    assert FACT_ADAPTER.validate_python(result.wire).event_id == result.fact.event_id
    fact = result.fact
    scope = {"trial_id": fact.trial_id, "site_id": fact.site_id}
    assert fact.event_id == event_id_for(fact.source, fact.source_ref, **scope)
    assert accept(item, recorded_at=NOW, actor="token:fuzz") == result  # deterministic
    counts.accepted("accept() items", 1)


@_fuzz("valid")
@given(item=valid_submissions())
def test_every_valid_submission_is_accepted(item: dict[str, Any]) -> None:
    counts.add("accept() valid items")

    result = accept(item, recorded_at=NOW, actor="token:fuzz")

    assert isinstance(result, Accepted), result
    counts.accepted("accept() valid items", 1)


class _Relay:
    def offer(self, entries: object) -> None:
        pass  # publishing is the relay's concern; these properties are about the log


class _Clock:
    def now(self) -> datetime:
        return NOW


@dataclass
class _Rig:
    loop: asyncio.AbstractEventLoop
    log: DuckDBEventLog
    ingest: Ingest

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Rig]:
    loop = asyncio.new_event_loop()
    log = DuckDBEventLog(Path(tmp_path_factory.mktemp("fuzz")) / "ingest.duckdb")
    log.open()
    yield _Rig(loop, log, Ingest(log=log, relay=_Relay(), clock=_Clock()))  # type: ignore[arg-type]
    log.close()
    loop.close()


@_fuzz("batches")
@given(batch=st.lists(any_items, min_size=1, max_size=12), site=st.none() | sites)
def test_a_batch_changes_the_log_by_exactly_its_accepted_events(
    rig: _Rig, batch: list[object], site: str | None
) -> None:
    """All or nothing per batch, a gapless chain, and a resubmission adds nothing."""
    counts.add("batches through the DuckDB log", items=len(batch))
    before = rig.run(rig.log.head()).seq

    try:
        outcomes = rig.run(rig.ingest.submit(batch, actor="token:fuzz", site=site))
    except OutOfSiteError:
        assert rig.run(rig.log.head()).seq == before  # refused whole: nothing stored
        return

    accepted = [o for o in outcomes if o.status == "accepted"]
    after = rig.run(rig.log.head()).seq
    counts.accepted("batches through the DuckDB log", len(accepted))
    assert [o.index for o in outcomes] == list(range(len(batch)))
    assert after == before + len(accepted)
    assert [o.seq for o in accepted] == list(range(before + 1, after + 1))
    _assert_chain_continues(rig, before)
    again = rig.run(rig.ingest.submit(batch, actor="token:fuzz", site=site))
    assert not [o for o in again if o.status == "accepted"]
    assert rig.run(rig.log.head()).seq == after


def _assert_chain_continues(rig: _Rig, before: int) -> None:
    previous = rig.run(rig.log.read_after(before - 1, 1)) if before else []
    prev_hash = previous[0].hash if previous else GENESIS_HASH
    for entry in rig.run(rig.log.read_after(before, 10_000)):
        assert entry.prev_hash == prev_hash
        assert entry.hash == chain_hash(prev_hash, entry.content)
        prev_hash = entry.hash
