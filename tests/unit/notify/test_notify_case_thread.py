"""An SAE case's follow-up update goes out on the email thread of the case's first page.

The rules name the first page in `thread_signal_id` (ICH E2D follow-up of a paged case); the
update's In-Reply-To and References are the Message-ID the same recipient got for it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from schemas import Urgency
from services.notify.adapters.smtp_mailer import build_message
from services.notify.core.plan import plan_notifications
from services.notify.ports import OutgoingMail
from tests.unit.notify.factories import make_routing, make_signal


def test_a_case_update_threads_under_the_first_page_for_each_recipient() -> None:
    routing = make_routing()
    page = make_signal()
    first = {p.address: p for p in plan_notifications(page, routing)}
    update = make_signal(
        urgency=Urgency.U1,
        title="SAE follow-up: case worsened",
        values={"case_update": "CTCAE grade 1 -> 3", "thread_signal_id": str(page.event_id)},
    )

    plans = plan_notifications(update, routing)

    assert {p.address for p in plans} == set(first)
    for plan in plans:
        assert plan.references == first[plan.address].message_id
        assert plan.message_id != first[plan.address].message_id
        mail = OutgoingMail(plan=plan, text="t", html="<p>t</p>")
        message = build_message(mail, mail_from="a@b.example", date=datetime.now(UTC))
        assert message["In-Reply-To"] == message["References"] == first[plan.address].message_id


def test_a_signal_without_a_thread_or_with_a_malformed_one_starts_its_own() -> None:
    routing = make_routing()
    for values in ({}, {"thread_signal_id": "not-a-uuid"}, {"thread_signal_id": 7}):
        plans = plan_notifications(make_signal(values=values), routing)
        assert [p.references for p in plans] == [None] * len(plans)
