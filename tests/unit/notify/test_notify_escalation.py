"""Escalation of unacknowledged U0 alerts, and what follows a permanent delivery failure."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from schemas import Role, Urgency
from services.notify.core.escalation import AlertState, due_level, escalation_plans
from services.notify.core.failover import DELIVERY_FAILURE_TEMPLATE, failover_plans
from services.notify.core.plan import plan_notifications
from services.notify.core.timing import describe_routes
from tests.unit.notify.factories import SAFETY_OFFICER, make_routing, make_signal

T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
HOUR = timedelta(minutes=60)
ROUTING = make_routing().model_copy(deep=True)
WITH_BACKUP = make_routing(
    """
version = 1
[roles.safety_officer]
addresses = ["so@trial.example"]
urgencies = ["U0", "U1", "U2"]
[roles.backup]
addresses = ["backup@trial.example"]
urgencies = ["U0"]
[roles.dsmb_chair]
addresses = ["chair@dsmb.example"]
urgencies = ["U0"]
[sites.S01.investigator]
addresses = ["pi@site1.example"]
urgencies = ["U0", "U1"]
"""
)


def _alert(**fields) -> AlertState:
    return AlertState(**{"signal_id": uuid4(), "urgency": Urgency.U0, "raised_at": T0, **fields})


def test_u0_escalates_at_60_min_then_to_the_chair_at_120() -> None:
    """RULES.md §0.3: unacknowledged at 60 min -> backup + SO; then the DSMB chair."""
    assert due_level(_alert(), now=T0 + HOUR - timedelta(seconds=1), delay=HOUR) is None
    assert due_level(_alert(), now=T0 + HOUR, delay=HOUR) == 1
    assert due_level(_alert(level=1), now=T0 + HOUR, delay=HOUR) is None
    assert due_level(_alert(level=1), now=T0 + 2 * HOUR, delay=HOUR) == 2
    assert due_level(_alert(level=2), now=T0 + 10 * HOUR, delay=HOUR) is None


def test_acknowledged_closed_or_non_u0_alerts_never_escalate() -> None:
    """Acknowledgement stops escalation; U1 is reminded by the rules service, not escalated."""
    late = T0 + 10 * HOUR
    assert due_level(_alert(acknowledged=True), now=late, delay=HOUR) is None
    assert due_level(_alert(closed=True), now=late, delay=HOUR) is None
    assert due_level(_alert(urgency=Urgency.U1), now=late, delay=HOUR) is None


def test_escalation_emails_reply_to_the_first_email_and_name_the_level() -> None:
    """Level 1 reaches backup and safety officer, threaded under the alert's first email."""
    first = plan_notifications(make_signal(), WITH_BACKUP)[0]

    plans = escalation_plans(first, 1, WITH_BACKUP, delay=HOUR)

    assert [(p.role, p.address) for p in plans] == [
        (Role.BACKUP, "backup@trial.example"),
        (Role.SAFETY_OFFICER, "so@trial.example"),
    ]
    assert {p.references for p in plans} == {first.message_id}
    expected = "[U0 SAE ESCALATED L1] unacknowledged 60 min — P-0042"
    assert all(p.subject.startswith(expected) for p in plans)
    assert len({p.notification_id for p in plans} | {first.notification_id}) == 3
    assert escalation_plans(first, 1, WITH_BACKUP, delay=HOUR) == plans  # deterministic ids
    [chair] = escalation_plans(first, 2, WITH_BACKUP, delay=HOUR)
    assert (chair.role, chair.context["escalation"]["level"]) == (Role.DSMB_CHAIR, 2)


def test_a_role_without_addresses_escalates_to_the_safety_officer_with_a_note() -> None:
    """The test routing file's backup has no address: the officer gets it, told why."""
    first = plan_notifications(make_signal(), ROUTING)[0]

    plans = escalation_plans(first, 1, ROUTING, delay=HOUR)

    assert {p.address for p in plans} == {SAFETY_OFFICER}
    assert "no addresses" in plans[0].context["notes"][0]


def test_permanent_failure_goes_to_backup_and_alarms_the_safety_officer() -> None:
    """5xx: the next route (backup) gets the message; the officer learns which address bounced."""
    plans = plan_notifications(make_signal(), WITH_BACKUP)
    failed = next(p for p in plans if p.role is Role.INVESTIGATOR)

    follow = failover_plans(failed, WITH_BACKUP, error="DeliveryRefusedError: 550 5.1.1 unknown")

    copy, alarm = follow
    assert (copy.role, copy.address) == (Role.BACKUP, "backup@trial.example")
    assert copy.subject == failed.subject
    assert copy.context["failover_of"] == "investigator"
    assert (alarm.address, alarm.template) == ("so@trial.example", DELIVERY_FAILURE_TEMPLATE)
    assert alarm.subject.startswith("[U0 DELIVERY FAILED] investigator pi@site1.example")
    assert "550 5.1.1" in alarm.context["error"]


def test_follow_ups_of_follow_ups_stop() -> None:
    """A bouncing alarm or backup copy raises nothing more: no mail loops."""
    failed = plan_notifications(make_signal(), WITH_BACKUP)[0]
    copy, alarm = failover_plans(failed, WITH_BACKUP, error="550")[-2:]

    assert failover_plans(alarm, WITH_BACKUP, error="550") == ()
    assert failover_plans(copy, WITH_BACKUP, error="550") == ()
    [only_alarm] = failover_plans(replace(failed, role=Role.BACKUP), WITH_BACKUP, error="550")
    assert only_alarm.template == DELIVERY_FAILURE_TEMPLATE


def test_routes_test_lists_first_emails_then_escalation_levels() -> None:
    """`safetymon routes test`: who is told, and when, for a U0 signal."""
    rows = describe_routes(make_signal(), WITH_BACKUP, escalation_minutes=60)

    assert [(r.role, r.address, r.when.split(" (")[0]) for r in rows] == [
        ("safety_officer", "so@trial.example", "immediately, acknowledgement requested"),
        ("investigator", "pi@site1.example", "immediately, acknowledgement requested"),
        ("backup", "backup@trial.example", "after 60 min if unacknowledged"),
        ("safety_officer", "so@trial.example", "after 60 min if unacknowledged"),
        ("dsmb_chair", "chair@dsmb.example", "after 120 min if unacknowledged"),
    ]
