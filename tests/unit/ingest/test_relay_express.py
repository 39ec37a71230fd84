"""The relay publishes an urgent fact ahead of another participant's backlog, never out of order.

Real DuckDB event log, a publisher that records what it is handed. Log order must reach the
stream for each participant, and relative to each clock tick of its trial; within that, an
SAE must not wait for other participants' thousands of lab results.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.ingest.adapters.duckdb_log import DuckDBEventLog
from services.ingest.app import Ingest, Relay
from services.ingest.core.chain import Entry
from tests.factories import enrolment, lab, sae, unique

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
CHUNK = 50


class _Clock:
    def now(self) -> datetime:
        return NOW


class _Recorder:
    def __init__(self) -> None:
        self.published: list[Entry] = []

    async def publish(self, entries: Sequence[Entry]) -> None:
        self.published.extend(entries)
        await asyncio.sleep(0)


@pytest.fixture
async def pipeline(tmp_path: Path) -> AsyncIterator[tuple[Ingest, Relay, _Recorder]]:
    log = DuckDBEventLog(tmp_path / "ingest.duckdb")
    log.open()
    recorder = _Recorder()
    relay = Relay(log=log, publisher=recorder, chunk=CHUNK)
    yield Ingest(log=log, relay=relay, clock=_Clock()), relay, recorder
    log.close()


async def _run(relay: Relay) -> None:
    task = asyncio.create_task(relay.run())
    await asyncio.sleep(0)
    await relay.drained(30)
    relay.stop()
    await task


def _participant(entry: Entry) -> str:
    return str(json.loads(entry.content).get("participant_id") or "tick")


async def test_an_sae_goes_ahead_of_another_participants_backlog(pipeline) -> None:  # type: ignore[no-untyped-def]
    ingest, relay, recorder = pipeline
    others = [unique("S02") for _ in range(10)]
    fresh = unique("S01")
    await ingest.submit([enrolment(participant_id=p, site_id="S02") for p in others], actor="t")
    await ingest.submit([enrolment(participant_id=fresh, site_id="S01")], actor="t")
    backlog = [
        lab(participant_id=others[n % 10], site_id="S02", value=n / 100) for n in range(1_000)
    ]
    await ingest.submit(backlog, actor="t")
    await ingest.submit([sae(participant_id=fresh, site_id="S01")], actor="t")

    await _run(relay)

    order = [_participant(e) for e in recorder.published]
    labs_before = order[: order.index(fresh, 11)].count  # after the enrolments
    assert sum(1 for p in order[: order.index(fresh, 11)] if p in others) <= 2 * CHUNK, labs_before
    seqs = [e.seq for e in recorder.published]
    assert sorted(seqs) == list(range(1, len(seqs) + 1)), "each entry exactly once"
    assert relay.position == len(seqs)


async def test_an_sae_waits_for_its_own_participants_earlier_facts(pipeline) -> None:  # type: ignore[no-untyped-def]
    ingest, relay, recorder = pipeline
    others = [unique("S02") for _ in range(5)]
    mine = unique("S01")
    await ingest.submit(
        [enrolment(participant_id=p, site_id="S02") for p in others]
        + [enrolment(participant_id=mine, site_id="S01")],
        actor="t",
    )
    await ingest.submit(
        [lab(participant_id=others[n % 5], site_id="S02") for n in range(300)], actor="t"
    )
    await ingest.submit([lab(participant_id=mine, site_id="S01", value=2.5)], actor="t")
    await ingest.submit(
        [lab(participant_id=others[n % 5], site_id="S02") for n in range(300)], actor="t"
    )
    await ingest.submit([sae(participant_id=mine, site_id="S01")], actor="t")

    await _run(relay)

    published = recorder.published
    mine_in_order = [e.seq for e in published if _participant(e) == mine]
    assert mine_in_order == sorted(mine_in_order), "a participant's facts in log order"
    assert [e.event_type for e in published if _participant(e) == mine][-1] == (
        "adverse_event_reported"
    )


async def test_nothing_goes_ahead_of_a_clock_tick_of_its_trial(pipeline) -> None:  # type: ignore[no-untyped-def]
    ingest, relay, recorder = pipeline
    others = [unique("S02") for _ in range(5)]
    fresh = unique("S01")
    await ingest.submit(
        [enrolment(participant_id=p, site_id="S02") for p in [*others, fresh]], actor="t"
    )
    await ingest.submit(
        [lab(participant_id=others[n % 5], site_id="S02") for n in range(300)], actor="t"
    )
    assert await ingest.record_tick("NCT01724398", 3600)
    await ingest.submit(
        [lab(participant_id=others[n % 5], site_id="S02") for n in range(300)], actor="t"
    )
    await ingest.submit([sae(participant_id=fresh, site_id="S01")], actor="t")

    await _run(relay)

    types = [e.event_type for e in recorder.published]
    tick, alert = types.index("clock_ticked"), types.index("adverse_event_reported")
    assert alert > tick, "the SAE was published ahead of a tick before it in the log"
    assert alert < len(types) - 2 * CHUNK, "behind the tick, it still went ahead of the rest"
    log_order = [e.seq for e in recorder.published if e.seq <= recorder.published[tick].seq]
    assert sorted(log_order) == log_order


async def test_entries_offered_while_the_position_is_written_are_not_left_behind(
    tmp_path: Path,
) -> None:
    """The relay goes idle only when nothing was offered during its last await (lost wake-up)."""
    log = DuckDBEventLog(tmp_path / "ingest.duckdb")
    log.open()
    recorder = _Recorder()
    relay = Relay(log=log, publisher=recorder, chunk=CHUNK)
    ingest = Ingest(log=log, relay=relay, clock=_Clock())
    marking = asyncio.Event()
    release = asyncio.Event()
    mark = log.mark_published

    async def slow_mark(position: int) -> None:
        marking.set()
        await release.wait()
        await mark(position)

    log.mark_published = slow_mark  # type: ignore[method-assign]
    task = asyncio.create_task(relay.run())
    try:
        await ingest.submit([enrolment(participant_id=unique("P"))], actor="t")
        await asyncio.wait_for(marking.wait(), 10)  # the relay is writing its position
        await ingest.submit([enrolment(participant_id=unique("P"))], actor="t")
        release.set()
        await relay.drained(10)
        assert [e.seq for e in recorder.published] == [1, 2]
    finally:
        relay.stop()
        await task
        log.close()
