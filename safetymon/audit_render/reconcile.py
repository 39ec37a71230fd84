"""How `safetymon audit reconcile` shows traces and gaps to people: rich tables.

The JSON document (`--json`, and `audit serve`) is `services.audit.adapters.documents`.
"""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.table import Table

from services.audit.core.reconcile import Reconciliation


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def print_reconcile(console: Console, result: Reconciliation, *, now: datetime) -> None:
    """Per-signal traces, then the gaps, then one verdict line."""
    traces = Table(title=f"Signals and their notifications (judged at {now.isoformat()})",
                   title_justify="left")  # fmt: skip
    for column in ("signal id", "rule", "urgency", "participant", "required", "sent", "failed",
                   "escalated", "acknowledged", "gaps"):  # fmt: skip
        traces.add_column(column, no_wrap=True)
    for t in result.traces:
        acked = f"{_iso(t.acknowledged_at)} {t.acknowledged_by}" if t.acknowledged_at else "-"
        traces.add_row(t.signal_id, f"{t.rule_id} v{t.rule_version}", t.urgency, t.participant_id,
                       str(t.required), str(t.sent), str(t.failed), str(t.escalations), acked,
                       f"[red]{t.gaps}[/red]" if t.gaps else "0")  # fmt: skip
    console.print(traces)
    if result.reports:
        console.print(f"{len(result.reports)} DSMB report announcement(s) in the trail, listed "
                      "with --json: not reconciled, their ReportIssued facts are not on the "
                      "event log.", highlight=False)  # fmt: skip
    if result.journaled:
        console.print(f"{result.journaled} send(s) counted as sent from notify's sent journal "
                      "alone: the SMTP server accepted them, the outbox commit did not follow "
                      "before notify stopped.", highlight=False)  # fmt: skip
    if not result.ack_tracked:
        console.print("The trail holds no acknowledgement or escalation: "
                      "'never acknowledged' was not checked.", highlight=False)  # fmt: skip
    if result.ok:
        console.print(f"[bold green]OK[/bold green]: {len(result.traces)} signals, no gap")
        return
    gaps = Table(title="Gaps", title_justify="left")
    for column in ("kind", "signal id", "rule", "urgency", "role", "address", "detail"):
        gaps.add_column(column, no_wrap=column != "detail")
    for gap in result.gaps:
        gaps.add_row(f"[red]{gap.kind}[/red]", gap.signal_id, gap.rule_id or "-",
                     gap.urgency or "-", gap.role or "-", gap.address or "-",
                     gap.detail)  # fmt: skip
    console.print(gaps)
    console.print(f"[bold red]GAPS[/bold red]: {len(result.gaps)} gap(s) in "
                  f"{len(result.traces)} signals", highlight=False)  # fmt: skip
