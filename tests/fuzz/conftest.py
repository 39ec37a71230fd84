"""Report how many generated inputs the fuzz tests ran (a fuzz run that generated nothing
proves nothing)."""

from __future__ import annotations

from typing import Any

from tests.fuzz import counts


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not counts.TOTALS:
        return
    terminalreporter.section("fuzzing: generated inputs")
    for kind, number in sorted(counts.TOTALS.items()):
        events = f"{counts.ITEMS[kind]} events, {counts.ACCEPTED[kind]} accepted"
        terminalreporter.write_line(f"{kind}: {number} inputs ({events})")
    terminalreporter.write_line(f"total: {sum(counts.TOTALS.values())} generated inputs")
