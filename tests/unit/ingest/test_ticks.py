"""Clock ticks (SAE-02): aligned to the period, deterministic ids, deduplicated."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from schemas import LOG_FACT_ADAPTER, ClockTicked
from services.ingest.adapters.ticker import Ticker
from services.ingest.core.ticks import boundary, tick_fact


def test_tick_is_aligned_to_its_period_boundary() -> None:
    """A tick at 10:00:59 with a 60 s period stands for 10:00:00 (occurred_at)."""
    now = datetime(2024, 3, 2, 10, 0, 59, tzinfo=UTC)

    fact, wire = tick_fact("NCT01724398", now, period_seconds=60)

    assert fact.occurred_at == datetime(2024, 3, 2, 10, 0, tzinfo=UTC)
    assert fact.recorded_at == now
    assert isinstance(LOG_FACT_ADAPTER.validate_python(wire), ClockTicked)


def test_same_boundary_gives_the_same_event_id_and_source_ref() -> None:
    """Two processes ticking within one period append one fact (dedup on source_ref)."""
    a, _ = tick_fact("T-1", datetime(2024, 3, 2, 10, 0, 1, tzinfo=UTC), period_seconds=60)
    b, _ = tick_fact("T-1", datetime(2024, 3, 2, 10, 0, 58, tzinfo=UTC), period_seconds=60)
    c, _ = tick_fact("T-1", datetime(2024, 3, 2, 10, 1, 0, tzinfo=UTC), period_seconds=60)

    assert (a.event_id, a.source_ref) == (b.event_id, b.source_ref)
    assert a.event_id != c.event_id


def test_a_period_below_one_second_is_refused() -> None:
    """A zero period is a configuration error, said plainly."""
    with pytest.raises(ValueError, match="at least 1 s"):
        boundary(datetime(2024, 3, 2, tzinfo=UTC), 0)


async def test_ticker_ticks_every_trial_at_once_and_survives_a_failed_append() -> None:
    """The ticker appends for each trial at start; a failing append is retried next period."""
    calls: list[str] = []

    async def append(trial_id: str, period: int) -> bool:
        calls.append(trial_id)
        if trial_id == "BROKEN":
            raise OSError("disk")
        return True

    ticker = Ticker(append, trials=("BROKEN", "T-1"), period_seconds=3600)
    task = asyncio.create_task(ticker.run())
    while len(calls) < 2:
        await asyncio.sleep(0.01)
    ticker.stop()
    await asyncio.wait_for(task, 5)

    assert calls == ["BROKEN", "T-1"]
