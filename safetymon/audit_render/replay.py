"""How `safetymon audit replay` shows what the system knew and decided to people: rich tables.

The JSON document (`--json`, and `audit serve`) is `services.audit.adapters.documents`.
"""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.table import Table

from services.audit.core.compare import LiveComparison
from services.audit.core.replayed import ReplayResult


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def print_replay(console: Console, result: ReplayResult, *, source: str) -> None:
    """Participants, then signals, then one summary line."""
    when = "everything recorded" if result.as_of is None else f"as of {result.as_of.isoformat()}"
    configured = result.config_version
    if result.configs:  # from the bundle's history: each fact with the one live at its seq
        configured = ", ".join(f"{version} from seq {seq}" for seq, version in result.configs)
    heading = (
        f"Replay of {source}, {when} (recorded time); trial configuration "
        f"{configured}, {len(result.rules)} rules"
    )
    console.print(heading, highlight=False, soft_wrap=True)
    people = Table(title="Participants known", title_justify="left")
    for column in ("participant", "site", "arm", "status", "facts", "signals", "last recorded"):
        people.add_column(column, no_wrap=True)
    for view in result.participants:
        last = _iso(view.last_recorded_at) or "-"
        people.add_row(view.participant_id, view.site_id or "-", view.arm or "-", view.status,
                       str(view.facts), str(view.signals), last)  # fmt: skip
    console.print(people)
    signals = Table(title="Signals the rules raised", title_justify="left")
    for column in ("signal id", "seq", "rule", "urgency", "participant", "occurred", "title"):
        signals.add_column(column, no_wrap=column != "title")
    for item in result.signals:
        payload = item.signal.payload
        signals.add_row(str(item.signal.event_id), str(item.seq),
                        f"{payload.rule_id} v{payload.rule_version}", payload.urgency.value,
                        item.signal.participant_id, _iso(item.signal.occurred_at) or "-",
                        payload.title)  # fmt: skip
    console.print(signals)
    if result.configs and result.configs[0][0] > 1:
        first, version = result.configs[0]
        note = (
            f"No configuration is recorded before seq {first} (the rules service kept no "
            f"history then): those facts were folded with {version}; --config folds the whole "
            "log with one file"
        )
        console.print(note, highlight=False, soft_wrap=True)
    for line in _resumption_lines(result):
        console.print(line, highlight=False, soft_wrap=True)
    written = sum(r.saved for r in result.resumptions)
    kept = f"; {written} checkpoints written" if written else ""
    console.print(f"{result.facts} facts and {result.ticks} clock ticks up to seq "
                  f"{result.last_seq or 0}, "
                  f"{len(result.participants)} participants, {len(result.signals)} signals; "
                  f"nothing was sent and nothing was written to the bundle or a service{kept}",
                  highlight=False)  # fmt: skip


def _resumption_lines(result: ReplayResult) -> list[str]:
    """Where each partition's fold began, when a verified checkpoint spared part of it."""
    lines = []
    for r in result.resumptions:
        if r.from_seq is None:
            continue
        part = (
            "" if r.partition[1] == 1 else f" (participants {r.partition[0] + 1}/{r.partition[1]})"
        )
        lines.append(f"Folded from a verified checkpoint at seq {r.from_seq}{part}: the log's "
                     f"chain hash there is {r.chain_hash}")  # fmt: skip
    return lines


def print_comparison(console: Console, comparison: LiveComparison) -> None:
    """The verdict on the live signals: one line when identical, else every difference."""
    beyond = ""
    if comparison.beyond:
        beyond = f" ({comparison.beyond} live signal(s) after the replayed range not compared)"
    if comparison.ok:
        console.print(f"[bold green]live and replayed signals identical[/bold green]: "
                      f"{comparison.identical} signals, same ids and bytes "
                      f"(canonical JSON){beyond}",
                      highlight=False)  # fmt: skip
        return
    table = Table(title="Live and replayed signals differ", title_justify="left")
    for column in ("difference", "signal id", "seq", "rule", "participant", "detail"):
        table.add_column(column, no_wrap=column != "detail")
    for d in comparison.differences:
        table.add_row(f"[red]{d.kind}[/red]", d.signal_id, str(d.seq or "-"), d.rule_id or "-",
                      d.participant_id or "-", d.detail)  # fmt: skip
    console.print(table)
    console.print(f"[bold red]DIFFERENT[/bold red]: {len(comparison.differences)} difference(s); "
                  f"{comparison.identical} of {comparison.replayed} replayed signals identical"
                  f"{beyond}", highlight=False)  # fmt: skip
