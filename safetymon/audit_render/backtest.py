"""How `safetymon audit backtest` shows a candidate rule's diff to people: a rich table.

The JSON document (`--json`, and `audit serve`) is `services.audit.adapters.documents`.
"""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.table import Table

from services.audit.core.backtest import Backtest


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def print_backtest(console: Console, result: Backtest) -> None:
    """One row per participant whose signals change, then the totals."""
    table = Table(title=f"{result.rule_id}: live {result.live_version} against candidate "
                        f"{result.candidate_version}", title_justify="left")  # fmt: skip
    for column in ("participant", "gained", "lost", "retimed (shift h)", "changed"):
        table.add_column(column)
    for change in result.participants:
        shifts = ", ".join(f"{r.shift.total_seconds() / 3600:+.1f}" for r in change.retimed)
        table.add_row(change.participant_id, str(len(change.gained)), str(len(change.lost)),
                      f"{len(change.retimed)} ({shifts})" if shifts else "0",
                      str(len(change.changed)))  # fmt: skip
    console.print(table)
    verdict = "identical" if result.identical else f"{len(result.participants)} participants differ"
    console.print(f"live {result.live_count} signals, candidate {result.candidate_count}: "
                  f"{verdict}", highlight=False)  # fmt: skip
