"""How `safetymon audit backtest` shows a candidate rule's diff: JSON and a rich table."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from services.audit.backtest import Backtest, Brief, ParticipantDiff


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _brief(brief: Brief) -> dict[str, Any]:
    return {**asdict(brief), "occurred_at": _iso(brief.occurred_at)}


def _participant(change: ParticipantDiff) -> dict[str, Any]:
    return {
        "trial_id": change.trial_id,
        "participant_id": change.participant_id,
        "gained": [_brief(b) for b in change.gained],
        "lost": [_brief(b) for b in change.lost],
        "retimed": [
            {
                "live": _brief(r.live),
                "candidate": _brief(r.candidate),
                "shift_hours": round(r.shift.total_seconds() / 3600, 2),
            }
            for r in change.retimed
        ],
        "changed": [_brief(b) for b in change.changed],
    }


def backtest_json(result: Backtest, *, source: dict[str, Any]) -> dict[str, Any]:
    """The diff for machines (`--json`)."""
    return {
        "rule_id": result.rule_id,
        "live": result.live_version,
        "candidate": result.candidate_version,
        "window": {"from": _iso(result.window[0]), "to": _iso(result.window[1])},
        "source": source,
        "identical": result.identical,
        "live_signals": result.live_count,
        "candidate_signals": result.candidate_count,
        "totals": {
            kind: sum(len(getattr(p, kind)) for p in result.participants)
            for kind in ("gained", "lost", "retimed", "changed")
        },
        "participants": [_participant(p) for p in result.participants],
    }


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
