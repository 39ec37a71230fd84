"""Reporting clocks on a tick (core layer): SAE-02's 24 h clock and SUSAR-01's 7/15-day ones.

A clock reminds once when the tick is within `remind` of its deadline and alerts once when
the deadline has passed; an overdue clock closes (there is nothing left to remind of).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from schemas import SignalRaised


class Clock(Protocol):
    """What a tick reads of a clock (a frozen dataclass with these fields)."""

    @property
    def due_at(self) -> datetime:
        """The reporting deadline."""

    @property
    def reminded(self) -> bool:
        """The reminder went out already."""


C = TypeVar("C", bound=Clock)


def ring(
    clocks: Sequence[C],
    *,
    now: datetime,
    remind: timedelta,
    signal: Callable[[C, bool], SignalRaised],
) -> tuple[list[C], list[SignalRaised]]:
    """The clocks still open after a tick at `now`, and the reminders/overdue alerts it fired.

    `signal(clock, overdue)` makes a clock's reminder (False) or overdue alert (True).
    """
    kept: list[C] = []
    signals: list[SignalRaised] = []
    for clock in clocks:
        if now >= clock.due_at:
            signals.append(signal(clock, True))
            continue
        if now >= clock.due_at - remind and not clock.reminded:
            signals.append(signal(clock, False))
            kept.append(replace(clock, reminded=True))  # type: ignore[type-var]
            continue
        kept.append(clock)
    return kept, signals
