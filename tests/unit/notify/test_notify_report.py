"""DSMB report announcements: routing by kind, immediate sending, content, idempotent intake."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from kit.jetstream import Delivery
from schemas import ReportIssued, Role, Urgency
from schemas.derived import ReportIssuedPayload
from services.notify.adapters.jinja_renderer import JinjaRenderer
from services.notify.adapters.memory import InMemoryNotificationStore, ManualClock
from services.notify.adapters.nats_routes import build_report_handler
from services.notify.app.reports import ReportIntake
from services.notify.core.escalation import escalation_plans
from services.notify.core.plan import notification_id_for
from services.notify.core.report import (
    REPORT_TEMPLATE,
    arm_counts,
    plan_report,
    triggered_stops,
)
from services.notify.ports import DeadLetter
from tests.unit.notify.factories import make_routing

ROUTING = """
version = 1
[roles.safety_officer]
addresses = ["so@trial.example"]
urgencies = ["U0", "U1", "U2"]
[roles.dsmb_chair]
addresses = ["chair@dsmb.example"]
urgencies = ["U0"]
[roles.dsmb]
addresses = ["stats@dsmb.example", "member@dsmb.example"]
urgencies = ["U0"]
[roles.backup]
addresses = ["monitor@trial.example"]
urgencies = ["U0"]
"""
NUMBERS = {
    "randomised.A": 2.0, "deaths.A": 0.0, "randomised.B": 2.0, "deaths.B": 1.0,
    "STOP-01.B.triggered": 0.0, "STOP-01.B.events": 1.0, "STOP-01.B.probability": 0.41,
    "STOP-02.B.28d.triggered": 1.0, "STOP-02.B.28d.events": 1.0,
    "STOP-02.B.28d.probability": 0.96125,
    "STOP-03.B.triggered": 1.0, "STOP-03.B.events": 1.0,
    "stops_triggered": 2.0,
}  # fmt: skip
HEAD = "ab" * 32


def make_report(kind: str = "dsmb_periodic", **numbers: float) -> ReportIssued:
    """A ReportIssued as the report service publishes it (fresh id)."""
    report_id = uuid4()
    return ReportIssued(
        event_id=report_id,
        trial_id="NCT01724398",
        occurred_at=datetime(2024, 4, 15, tzinfo=UTC),
        recorded_at=datetime(2024, 4, 15, 0, 5, tzinfo=UTC),
        source="report",
        source_ref=f"{kind}:{report_id}",
        actor="safetymon-report",
        payload=ReportIssuedPayload(
            report_kind=kind,
            log_position=49,
            chain_head=HEAD,
            files_sha256={"ae_summary.csv": "cd" * 32},
            numbers=numbers or NUMBERS,
        ),
    )


def test_periodic_report_goes_to_dsmb_and_chair_at_once_as_u3() -> None:
    """The periodic report reaches every DSMB address, not via the digest."""
    report = make_report("dsmb_periodic")

    plans = plan_report(report, make_routing(ROUTING), reports_base_url=None)

    assert {(p.role, p.address) for p in plans} == {
        (Role.DSMB, "stats@dsmb.example"),
        (Role.DSMB, "member@dsmb.example"),
        (Role.DSMB_CHAIR, "chair@dsmb.example"),
    }
    assert {p.urgency for p in plans} == {Urgency.U3}
    assert all(p.digest_key is None and p.not_before is None for p in plans)
    assert all(p.template == REPORT_TEMPLATE and p.signal_id == report.event_id for p in plans)


def test_ad_hoc_report_goes_to_chair_and_safety_officer_as_u0() -> None:
    report = make_report("dsmb_ad_hoc")

    plans = plan_report(report, make_routing(ROUTING), reports_base_url=None)

    assert {(p.role, p.address) for p in plans} == {
        (Role.DSMB_CHAIR, "chair@dsmb.example"),
        (Role.SAFETY_OFFICER, "so@trial.example"),
    }
    assert {p.urgency for p in plans} == {Urgency.U0}


def test_notification_ids_are_a_function_of_report_id_and_recipient() -> None:
    report = make_report()

    first = plan_report(report, make_routing(ROUTING), reports_base_url=None)
    again = plan_report(report, make_routing(ROUTING), reports_base_url=None)

    assert [p.notification_id for p in first] == [p.notification_id for p in again]
    assert {p.notification_id for p in first} == {
        notification_id_for(report.event_id, p.role, p.address) for p in first
    }


def test_missing_dsmb_role_falls_back_to_the_safety_officer_with_a_note() -> None:
    routing = make_routing()  # the shared test file has no [roles.dsmb]

    plans = plan_report(make_report(), routing, reports_base_url=None)

    officer = [p for p in plans if p.role is Role.SAFETY_OFFICER]
    assert [p.address for p in officer] == ["safety.officer@trial.example"]
    assert "no entry for the dsmb role" in officer[0].context["notes"][0]


def test_triggered_stops_are_read_from_the_numbers() -> None:
    assert triggered_stops(NUMBERS) == [
        {"rule": "STOP-02", "arm": "B", "window": "28 days", "probability": "0.9613",
         "events": "1"},
        {"rule": "STOP-03", "arm": "B", "window": "—", "probability": "—", "events": "1"},
    ]  # fmt: skip
    assert arm_counts(NUMBERS) == [
        {"arm": "A", "randomised": "2", "deaths": "0"},
        {"arm": "B", "randomised": "2", "deaths": "1"},
    ]


def test_subject_is_triageable_and_names_the_triggered_stops() -> None:
    plans = plan_report(make_report("dsmb_ad_hoc"), make_routing(ROUTING), reports_base_url=None)
    quiet = make_report("dsmb_periodic", **{"randomised.A": 1.0, "stops_triggered": 0.0})
    calm = plan_report(quiet, make_routing(ROUTING), reports_base_url=None)

    assert plans[0].subject == (
        "[U0 DSMB AD HOC REPORT] NCT01724398 — as of 2024-04-15 00:00 UTC — "
        "STOPPING RULE TRIGGERED: STOP-02 arm B, STOP-03 arm B"
    )
    assert calm[0].subject == (
        "[U3 DSMB PERIODIC REPORT] NCT01724398 — as of 2024-04-15 00:00 UTC — "
        "no stopping rule triggered"
    )


def test_email_carries_provenance_numbers_and_link_without_participants() -> None:
    report = make_report("dsmb_ad_hoc")
    plan = plan_report(report, make_routing(ROUTING), reports_base_url="https://dsmb.example/")[0]

    text, html = JinjaRenderer().render(replace(plan, context={**plan.context, "ack_url": None}))

    link = f"https://dsmb.example/v1/reports/{report.event_id}/dsmb_report.html"
    for body in (text, html):
        for expected in ("2024-04-15 00:00 UTC", "49", HEAD, "STOP-02", "28 days", "0.9613",
                         link, str(report.event_id)):  # fmt: skip
            assert expected in body, expected
        assert re.search(r"\bP-\d", body) is None  # no participant code
    assert "arm B: randomised 2, deaths 1" in text


def test_html_autoescapes_the_link() -> None:
    plan = plan_report(
        make_report(), make_routing(ROUTING), reports_base_url="https://x.example/<b>"
    )[0]

    _, html = JinjaRenderer().render(replace(plan, context={**plan.context, "ack_url": None}))

    assert "<b>" not in html
    assert "&lt;b&gt;" in html


async def test_intake_records_each_report_once_and_wakes_the_sender() -> None:
    store = InMemoryNotificationStore()
    woken: list[bool] = []
    intake = ReportIntake(
        store=store, routing=make_routing(ROUTING), clock=ManualClock(), log=_NullLog(),
        consumer="notify-reports", on_recorded=lambda: woken.append(True),
    )  # fmt: skip
    periodic, ad_hoc = make_report("dsmb_periodic"), make_report("dsmb_ad_hoc")

    first = await intake([periodic, ad_hoc, periodic])
    again = await intake([ad_hoc])

    assert first.new_signals == (periodic.event_id, ad_hoc.event_id)
    assert first.duplicates == (periodic.event_id,)
    assert first.notifications == 5
    assert again.new_signals == ()
    assert again.duplicates == (ad_hoc.event_id,)
    assert woken == [True]
    rows = await store.notifications()
    assert len(rows) == 5
    assert {UUID(r["signal_id"]) for r in rows} == {periodic.event_id, ad_hoc.event_id}


class _NullLog:
    def info(self, event: str, **kw: object) -> None: ...
    def warning(self, event: str, **kw: object) -> None: ...
    def error(self, event: str, **kw: object) -> None: ...


async def test_undecodable_announcement_is_dead_lettered_with_its_batch() -> None:
    seen: list[tuple[list[ReportIssued], list[DeadLetter]]] = []

    async def intake(reports: Sequence[ReportIssued], dead: Sequence[DeadLetter]) -> None:
        seen.append((list(reports), list(dead)))

    handler = build_report_handler(intake, log=_NullLog())
    good = make_report()
    deliveries = [
        Delivery(good.model_dump_json().encode(), "ns.report.report_issued.v1", 1, 1),
        Delivery(b'{"event_type": "report_issued"}', "ns.report.report_issued.v1", 2, 1),
    ]

    await handler(deliveries)

    ((reports, dead),) = seen
    assert reports == [good]
    assert [letter.stream_seq for letter in dead] == [2]
    assert "payload" in dead[0].error


def test_unacknowledged_ad_hoc_report_escalates_as_a_reply_that_renders() -> None:
    routing = make_routing(ROUTING)
    first = plan_report(make_report("dsmb_ad_hoc"), routing, reports_base_url=None)[0]

    plans = escalation_plans(first, 1, routing, delay=timedelta(minutes=60))
    text, html = JinjaRenderer().render(
        replace(plans[0], context={**plans[0].context, "ack_url": None})
    )

    assert {p.address for p in plans} == {"monitor@trial.example", "so@trial.example"}
    assert plans[0].subject.startswith("[U0 DSMB AD HOC REPORT ESCALATED L1] unacknowledged 60 min")
    assert all(p.references == first.message_id for p in plans)
    assert "ESCALATED (level 1)" in text
    assert "ESCALATED (level 1)" in html
