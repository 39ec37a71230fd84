"""Reconcile: every notification a signal required under the routing, against the notify trail.

Signals come from replaying a real bundle; trails are chained by notify's own code from the
plans notify's own planner makes, so only the planted fault differs from a real run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import pytest
from typer.testing import CliRunner

from safetymon.cli import app
from schemas import AlertAcknowledged, ReportIssued, SignalRaised, SignalUpdated, Urgency
from services.audit.adapters.parquet_trail import read_trail
from services.audit.adapters.replayer import replay_bundle
from services.audit.adapters.settings_files import load_config
from services.audit.core.reconcile import Policy, reconcile
from services.audit.core.routing import REPORT_PARTICIPANT
from services.audit.core.trail import TrailEntry
from services.notify.core.audit import AuditFact, failed_fact, intended_fact, sent_fact
from services.notify.core.plan import NotificationPlan, plan_notifications
from services.notify.core.report import plan_report
from services.notify.core.routing import parse_routing
from services.notify.ports import JournaledSend
from tests.factories import ROUTING, TRIAL, enrolment, lab, sae, unique
from tests.unit.audit.bundles import write_bundle
from tests.unit.audit.logs import accepted_wires

# Each test replays a whole bundle written by the live services' own stores.
pytestmark = pytest.mark.slow

DAY1 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
_ROUTING = parse_routing(ROUTING)
Signal = SignalRaised | SignalUpdated


def _wires() -> list[dict[str, Any]]:
    """An enrolment, an SAE (U0) and a late positive culture (U0) for one S01 participant."""
    pid = unique("P")
    return accepted_wires([
        (enrolment(participant_id=pid), DAY1),
        (sae(participant_id=pid), DAY1 + timedelta(hours=2)),
        (lab(loinc="600-7", value=1, unit="1", participant_id=pid,
             occurred_at="2024-03-02T08:00:00Z"), DAY1 + timedelta(days=3)),
    ])  # fmt: skip


def _signals(tmp_path: Path, wires: list[dict[str, Any]]) -> list[Signal]:
    bundle = write_bundle(tmp_path / "signals-only", wires)
    replayed = replay_bundle(bundle, as_of=None, config=load_config(), workers=1)
    return [item.signal for item in replayed.signals]


def _delivered(
    signals: Sequence[Signal], *, after: timedelta = timedelta(seconds=5)
) -> list[AuditFact]:
    """What a healthy notify records: intended, then sent, for every planned notification."""
    facts: list[AuditFact] = []
    for signal in signals:
        for plan in plan_notifications(signal, _ROUTING):
            at = signal.recorded_at + after
            facts.append(intended_fact(plan, now=at))
            facts.append(sent_fact(plan, attempt=1, smtp_reply="250 ok", now=at))
    return facts


def _plans(signals: Sequence[Signal]) -> list[NotificationPlan]:
    return [plan for signal in signals for plan in plan_notifications(signal, _ROUTING)]


def _acknowledged(signal: Signal, at: datetime) -> AlertAcknowledged:
    return AlertAcknowledged(
        event_id=uuid5(signal.event_id, "acknowledged"), trial_id=signal.trial_id,
        site_id=signal.site_id, participant_id=signal.participant_id, occurred_at=at,
        recorded_at=at, source="notify", source_ref=f"{signal.event_id}:acknowledged",
        actor="dr-so", causation_id=signal.event_id,
        payload={"signal_id": signal.event_id, "by": "dr-so", "reason": "reviewed"},
    )  # fmt: skip


def _reconcile_cli(bundle: Path, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING)
    result = CliRunner().invoke(
        app, ["audit", "reconcile", str(bundle), "--routing", str(routing), "--json", *extra]
    )
    return result.exit_code, json.loads(result.stdout)


def _policy(signals: Sequence[Signal]) -> Policy:
    return Policy(now=max(s.recorded_at for s in signals) + timedelta(days=1))


def _entries(
    tmp_path: Path, wires: list[dict[str, Any]], trail: list[AuditFact]
) -> tuple[TrailEntry, ...]:
    return read_trail(write_bundle(tmp_path / f"b-{unique('t')}", wires, trail))


def test_a_complete_trail_reconciles_and_exits_0(tmp_path: Path) -> None:
    wires = _wires()
    signals = _signals(tmp_path, wires)
    bundle = write_bundle(tmp_path / "bundle", wires, _delivered(signals))

    code, report = _reconcile_cli(bundle, tmp_path)

    assert code == 0, report["gaps"]
    assert report["ok"] is True
    assert {s["rule_id"] for s in report["signals"]} >= {"SAE-01", "INF-05"}
    assert all(s["sent"] == s["required"] > 0 for s in report["signals"] if s["urgency"] == "U0")
    assert report["acknowledgements_tracked"] is False


def test_a_planted_missing_notification_is_found_and_exits_1(tmp_path: Path) -> None:
    wires = _wires()
    signals = _signals(tmp_path, wires)
    dropped = _plans(signals)[1]
    trail = [f for f in _delivered(signals) if f.payload.notification_id != dropped.notification_id]
    bundle = write_bundle(tmp_path / "bundle", wires, trail)

    code, report = _reconcile_cli(bundle, tmp_path)

    assert code == 1
    assert [(g["kind"], g["notification_id"], g["address"]) for g in report["gaps"]] == [
        ("missing", str(dropped.notification_id), dropped.address)
    ]
    assert report["gaps"][0]["signal_id"] == str(dropped.signal_id)


def test_a_u0_sent_two_hours_after_the_signal_is_late(tmp_path: Path) -> None:
    wires = _wires()
    signals = _signals(tmp_path, wires)
    entries = _entries(tmp_path, wires, _delivered(signals, after=timedelta(hours=2)))

    result = reconcile(signals, entries, required=_required, policy=_policy(signals))

    late = {(g.kind, g.urgency) for g in result.gaps}
    assert late == {("late", "U0")}
    assert "allows 15 min" in result.gaps[0].detail


def test_a_permanent_failure_is_a_gap_unless_something_was_sent_after_it(tmp_path: Path) -> None:
    wires = _wires()
    signals = _signals(tmp_path, wires)
    victim = _plans(signals)[0]
    at = signals[0].recorded_at + timedelta(seconds=30)
    bounced = [
        f for f in _delivered(signals) if f.payload.notification_id != victim.notification_id
    ]
    bounce = failed_fact(victim, attempt=1, error="550 no such user", permanent=True, now=at)
    bounced += [intended_fact(victim, now=at), bounce]
    backup = uuid5(NAMESPACE_URL, "backup")
    failover = NotificationPlan(**{**_plan_fields(victim), "notification_id": backup,
                                   "address": "backup@trial.example"})  # fmt: skip
    covered = [*bounced, sent_fact(failover, attempt=1, smtp_reply="250", now=at)]

    bare = reconcile(
        signals, _entries(tmp_path, wires, bounced), required=_required, policy=_policy(signals)
    )
    followed = reconcile(
        signals, _entries(tmp_path, wires, covered), required=_required, policy=_policy(signals)
    )

    assert [(g.kind, g.notification_id) for g in bare.gaps] == [
        ("failed_without_failover", str(victim.notification_id))
    ]
    assert followed.ok


def test_unacknowledged_u0_and_u1_are_gaps_only_once_the_trail_records_acknowledgements(
    tmp_path: Path,
) -> None:
    wires = _wires()
    signals = _signals(tmp_path, wires)
    urgent = [s for s in signals if s.payload.urgency in {Urgency.U0, Urgency.U1}]
    first = urgent[0]
    acked = [*_delivered(signals), _acknowledged(first, first.recorded_at + timedelta(minutes=5))]

    without = reconcile(signals, _entries(tmp_path, wires, _delivered(signals)),
                        required=_required, policy=_policy(signals))  # fmt: skip
    tracked = reconcile(
        signals, _entries(tmp_path, wires, acked), required=_required, policy=_policy(signals)
    )

    assert without.ok
    assert {g.signal_id for g in tracked.gaps} == {str(s.event_id) for s in urgent[1:]}
    assert {g.kind for g in tracked.gaps} == {"never_acknowledged"}
    trace = next(t for t in tracked.traces if t.signal_id == str(first.event_id))
    assert trace.acknowledged_by == "dr-so"


def test_a_notification_about_a_signal_the_log_does_not_give_is_a_gap(tmp_path: Path) -> None:
    wires = _wires()
    signals = _signals(tmp_path, wires)
    stranger = NotificationPlan(**{**_plan_fields(_plans(signals)[0]),
                                   "signal_id": uuid5(NAMESPACE_URL, "forged-signal")})  # fmt: skip
    trail = [*_delivered(signals), intended_fact(stranger, now=DAY1)]

    result = reconcile(
        signals, _entries(tmp_path, wires, trail), required=_required, policy=_policy(signals)
    )

    assert [(g.kind, g.signal_id) for g in result.gaps] == [
        ("unknown_signal", str(uuid5(NAMESPACE_URL, "forged-signal")))
    ]


def test_a_notification_not_yet_due_is_pending_not_missing(tmp_path: Path) -> None:
    wires = _wires()
    signals = _signals(tmp_path, wires)
    newest = max(s.recorded_at for s in signals)

    result = reconcile(
        signals, (), required=_required, policy=Policy(now=newest + timedelta(minutes=1))
    )

    fresh = {str(s.event_id) for s in signals if s.recorded_at == newest}
    sae01 = next(s for s in signals if s.payload.rule_id == "SAE-01")
    assert fresh
    assert not fresh & {g.signal_id for g in result.gaps}
    assert ("missing", str(sae01.event_id)) in {(g.kind, g.signal_id) for g in result.gaps}


def _required(signal: Signal) -> Any:
    from services.audit.core.routing import required

    return required(signal, _ROUTING)


def _plan_fields(plan: NotificationPlan) -> dict[str, Any]:
    return {name: getattr(plan, name) for name in plan.__dataclass_fields__}


def _report_issued(kind: str) -> ReportIssued:
    """A DSMB report announcement as the report service publishes it (not on the event log)."""
    at = DAY1 + timedelta(days=30)
    return ReportIssued(
        event_id=uuid5(NAMESPACE_URL, f"report-{kind}"), trial_id=TRIAL, occurred_at=at,
        recorded_at=at, source="safetymon-report", source_ref=f"report:{kind}",
        actor="safetymon-report",
        payload={"report_kind": kind, "log_position": 3, "chain_head": "a" * 64,
                 "files_sha256": {}, "numbers": {"randomised.A": 1.0}},
    )  # fmt: skip


def test_dsmb_report_announcements_are_listed_apart_not_flagged_as_unknown_signals(
    tmp_path: Path,
) -> None:
    """notify's report emails name a ReportIssued id where a signal id goes; the log has none."""
    wires = _wires()
    signals = _signals(tmp_path, wires)
    report = _report_issued("dsmb_ad_hoc")
    plans = plan_report(report, _ROUTING, reports_base_url=None)
    at = report.recorded_at + timedelta(seconds=3)
    announced: list[AuditFact] = []
    for plan in plans:
        announced += [
            intended_fact(plan, now=at),
            sent_fact(plan, attempt=1, smtp_reply="250", now=at),
        ]
    stranger = NotificationPlan(**{**_plan_fields(_plans(signals)[0]),
                                   "signal_id": uuid5(NAMESPACE_URL, "forged-signal")})  # fmt: skip
    bundle = write_bundle(
        tmp_path / "bundle",
        wires,
        [*_delivered(signals), *announced, intended_fact(stranger, now=at)],
    )

    code, document = _reconcile_cli(bundle, tmp_path)

    assert plans
    assert all(p.participant_id == REPORT_PARTICIPANT for p in plans)
    assert code == 1  # the forged signal's notification still is a gap
    assert [(g["kind"], g["signal_id"]) for g in document["gaps"]] == [
        ("unknown_signal", str(uuid5(NAMESPACE_URL, "forged-signal")))
    ]
    assert document["reports"] == [
        {
            "report_id": str(report.event_id),
            "intended": len(plans),
            "sent": len(plans),
            "failed": 0,
            "first_sent_at": at.isoformat(),
        }
    ]
    assert str(report.event_id) not in {s["signal_id"] for s in document["signals"]}


def test_a_trail_with_only_report_announcements_besides_its_signals_reconciles(
    tmp_path: Path,
) -> None:
    wires = _wires()
    signals = _signals(tmp_path, wires)
    report = _report_issued("dsmb_periodic")
    at = report.recorded_at
    announced = [
        intended_fact(p, now=at) for p in plan_report(report, _ROUTING, reports_base_url=None)
    ]
    entries = _entries(tmp_path, wires, [*_delivered(signals), *announced])

    result = reconcile(signals, entries, required=_required, policy=_policy(signals))

    assert result.ok
    assert [(r.report_id, r.sent, r.first_sent_at) for r in result.reports] == [
        (str(report.event_id), 0, None)
    ]
    assert result.reports[0].intended == len(announced) > 0


def test_a_send_only_the_sent_journal_holds_counts_as_sent_and_is_said_so(
    tmp_path: Path,
) -> None:
    """A notify killed between the SMTP 250 and its outbox commit left only the journal."""
    wires = _wires()
    signals = _signals(tmp_path, wires)
    in_doubt = _plans(signals)[0]
    trail = [
        f for f in _delivered(signals)
        if not (f.event_type == "notification_sent"
                and f.payload.notification_id == in_doubt.notification_id)
    ]  # fmt: skip
    accepted = signals[0].recorded_at + timedelta(seconds=5)
    journal = [JournaledSend(in_doubt.notification_id, 1, "250 2.0.0 Ok: queued", accepted)]
    without = write_bundle(tmp_path / "without", wires, trail)
    with_journal = write_bundle(tmp_path / "with", wires, trail, journal=journal)

    gap_code, gaps = _reconcile_cli(without, tmp_path)
    code, report = _reconcile_cli(with_journal, tmp_path)

    assert gap_code == 1
    assert [(g["kind"], g["notification_id"]) for g in gaps["gaps"]] == [
        ("unsent", str(in_doubt.notification_id))
    ]
    assert code == 0, report["gaps"]
    assert report["sent_per_journal"] == 1
    assert gaps["sent_per_journal"] == 0
