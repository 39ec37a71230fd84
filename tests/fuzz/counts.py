"""How many generated inputs the fuzz tests ran, printed at the end of the session."""

from __future__ import annotations

from collections import Counter

TOTALS: Counter[str] = Counter()
ITEMS: Counter[str] = Counter()
ACCEPTED: Counter[str] = Counter()


def add(kind: str, *, items: int = 1) -> None:
    """Count one generated input of `kind` (carrying `items` events)."""
    TOTALS[kind] += 1
    ITEMS[kind] += items


def accepted(kind: str, number: int) -> None:
    """Count events of `kind` inputs that ingest accepted (appended to the log)."""
    ACCEPTED[kind] += number
