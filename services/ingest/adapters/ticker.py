"""Clock ticker of the ingest service (adapters layer): append a ClockTicked per trial per period.

The only place that turns wall-clock time into log facts for the rules (SAE-02's 24 h
sponsor-report clock). A failed append is logged and retried at the next period; the tick
of a boundary already on the log is a duplicate and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

import structlog

log = structlog.get_logger(__name__)

Append = Callable[[str, int], Awaitable[bool]]


class Ticker:
    """Call `append(trial_id, period)` for every trial now, then once per period, until stopped."""

    def __init__(self, append: Append, *, trials: Sequence[str], period_seconds: int) -> None:
        if period_seconds < 1:
            raise ValueError(f"tick period must be at least 1 s, got {period_seconds}")
        self._append = append
        self._trials = tuple(trials)
        self._period = period_seconds
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Tick each trial, then wait one period (or until `stop()`)."""
        while not self._stopping.is_set():
            for trial_id in self._trials:
                try:
                    appended = await self._append(trial_id, self._period)
                except Exception as exc:  # retried next period; the log is unchanged
                    log.warning("clock_tick_failed", trial_id=trial_id, error=type(exc).__name__)
                    continue
                if appended:
                    log.debug("clock_ticked", trial_id=trial_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._period)

    def stop(self) -> None:
        """Ask `run()` to return."""
        self._stopping.set()
