"""How `safetymon audit replay` shows what the system knew and decided: JSON and rich tables."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from services.audit.compare import LiveComparison
from services.audit.replay import ParticipantView, ReplayedSignal, ReplayResult


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def signal_json(item: ReplayedSignal) -> dict[str, Any]:
    """One re-derived signal for machines: ids, rule and version, and its canonical digest."""
    signal = item.signal
    payload = signal.payload
    return {
        "signal_id": str(signal.event_id),
        "kind": signal.event_type,
        "seq": item.seq,
        "rule_id": payload.rule_id,
        "rule_version": payload.rule_version,
        "config_version": payload.values.get("config_version"),
        "urgency": payload.urgency.value,
        "category": payload.category,
        "title": payload.title,
        "trial_id": signal.trial_id,
        "site_id": signal.site_id,
        "participant_id": signal.participant_id,
        "occurred_at": _iso(signal.occurred_at),
        "recorded_at": _iso(signal.recorded_at),
        "evidence_event_ids": [str(event_id) for event_id in payload.evidence_event_ids],
        "sha256": hashlib.sha256(item.canonical).hexdigest(),
    }


def participant_json(view: ParticipantView) -> dict[str, Any]:
    """One participant as the log described them at the replay time."""
    return {
        "trial_id": view.trial_id,
        "participant_id": view.participant_id,
        "site_id": view.site_id,
        "arm": view.arm,
        "status": view.status,
        "facts": view.facts,
        "signals": view.signals,
        "first_recorded_at": _iso(view.first_recorded_at),
        "last_recorded_at": _iso(view.last_recorded_at),
    }


def replay_json(result: ReplayResult, *, source: dict[str, Any]) -> dict[str, Any]:
    """The whole replay for machines (`--json`)."""
    return {
        "as_of": _iso(result.as_of),
        "source": source,
        "facts": result.facts,
        "ticks": result.ticks,
        "last_seq": result.last_seq,
        "config_version": result.config_version,
        "configurations": [
            {"from_seq": seq, "config_version": version} for seq, version in result.configs
        ],
        "rules": [{"rule_id": rule, "rule_version": version} for rule, version in result.rules],
        "participants": [participant_json(view) for view in result.participants],
        "signals": [signal_json(item) for item in result.signals],
        "checkpoints": [
            {
                "partition": list(r.partition),
                "resumed_from_seq": r.from_seq,
                "chain_hash": r.chain_hash,
                "written": r.saved,
            }
            for r in result.resumptions
        ],
    }


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


def comparison_json(comparison: LiveComparison) -> dict[str, object]:
    """The comparison with the live signals for machines (`live_signals` in `--json`)."""
    return {
        "ok": comparison.ok,
        "identical": comparison.identical,
        "live_in_range": comparison.live,
        "replayed": comparison.replayed,
        "live_beyond_range": comparison.beyond,
        "differences": [asdict(difference) for difference in comparison.differences],
    }


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
