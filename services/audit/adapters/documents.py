"""The audit's answers as JSON documents: the HTTP API's bodies and the CLI's `--json`.

One shape per answer (verify, replay and its comparison with the live signals, reconcile,
backtest), so an auditor gets the same document from `safetymon audit ... --json` and from
`audit serve`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from services.audit.core.backtest import Backtest, Brief, ParticipantDiff
from services.audit.core.compare import LiveComparison
from services.audit.core.manifest import Manifest
from services.audit.core.reconcile import Reconciliation
from services.audit.core.replayed import ParticipantView, ReplayedSignal, ReplayResult
from services.audit.core.verify import BundleReport, ChainReport, SignalsReport


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _unchained(chain: ChainReport) -> int:
    """Leading rows written before their chain existed (only the signals chain has them)."""
    return chain.unchained if isinstance(chain, SignalsReport) else 0


def report_json(bundle: Path, manifest: Manifest, report: BundleReport) -> dict[str, Any]:
    """The verify report for machines (`--json`)."""
    return {
        "ok": report.ok,
        "bundle": str(bundle),
        "format_version": manifest.format_version,
        "created_at": manifest.created_at.isoformat(),
        "first_problem": report.first_problem(),
        "files": [
            {
                "file": check.name,
                "ok": check.ok,
                "sha256": check.actual_sha256,
                "expected_sha256": check.expected_sha256,
                "problem": check.problem,
            }
            for check in report.files
        ],
        "chains": [_chain_json(chain, manifest) for chain in report.chains],
        "problems": list(report.problems),
    }


def _chain_json(chain: ChainReport, manifest: Manifest) -> dict[str, Any]:
    entry = manifest.files.get(f"{chain.name}.parquet")
    expected = (
        {"rows": entry.rows, "last_seq": entry.chain.last_seq, "head": entry.chain.head}
        if entry is not None and entry.chain is not None
        else None
    )
    problem = chain.problem
    return {
        "name": chain.name,
        "ok": chain.ok,
        "count": chain.count,
        "verified": chain.verified,
        "unchained": _unchained(chain),
        "head": chain.head,
        "expected": expected,
        "problem": None
        if problem is None
        else {
            "kind": problem.kind,
            "seq": problem.seq,
            "position": problem.position,
            "detail": problem.detail,
        },
    }


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


def backtest_json(result: Backtest, *, source: Mapping[str, object]) -> dict[str, Any]:
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


def reconcile_json(
    result: Reconciliation, *, source: Mapping[str, object], now: datetime
) -> dict[str, Any]:
    """The whole reconciliation for machines (`--json`)."""
    traces = []
    for trace in result.traces:
        item = asdict(trace)
        item["recorded_at"] = _iso(trace.recorded_at)
        item["acknowledged_at"] = _iso(trace.acknowledged_at)
        item["evidence_event_ids"] = list(trace.evidence_event_ids)
        traces.append(item)
    return {
        "ok": result.ok,
        "source": source,
        "judged_at": _iso(now),
        "acknowledgements_tracked": result.ack_tracked,
        "sent_per_journal": result.journaled,
        "signals": traces,
        "gaps": [asdict(gap) for gap in result.gaps],
        "reports": [
            {**asdict(report), "first_sent_at": _iso(report.first_sent_at)}
            for report in result.reports
        ],
    }


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


def replay_json(result: ReplayResult, *, source: Mapping[str, object]) -> dict[str, Any]:
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
