"""SQL text the kernel renders its definitions into (DuckDB; only from constants, never input)."""

from __future__ import annotations

from collections.abc import Iterable


def literal(text: str) -> str:
    """An SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def in_list(values: Iterable[str]) -> str:
    """`(a, b, ...)` of sorted literals for `x IN ...` (`(NULL)`, matching nothing, when empty)."""
    ordered = sorted(values)
    return "(" + ", ".join(literal(v) for v in ordered) + ")" if ordered else "(NULL)"
