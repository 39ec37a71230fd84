"""Planning: deterministic ids, triage subject lines, minimum necessary content, audit chain."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from uuid import uuid5
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from schemas import Role, Urgency
from services.notify.core import audit
from services.notify.core.plan import (
    message_id_for,
    one_line,
    plan_notifications,
    subject_line,
)
from services.notify.core.retry import retry_delay
from tests.unit.notify.factories import make_routing, make_signal, make_update

NOW = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def test_planning_twice_gives_identical_plans() -> None:
    """A redelivered signal plans the same notifications bit for bit."""
    signal = make_signal()

    assert plan_notifications(signal, make_routing()) == plan_notifications(signal, make_routing())


def test_notification_id_is_uuid5_of_signal_role_and_address() -> None:
    signal = make_signal()

    plans = plan_notifications(signal, make_routing())

    pi = next(p for p in plans if p.address == "pi.s01@site1.example")
    assert pi.notification_id == uuid5(signal.event_id, "investigator:pi.s01@site1.example")
    assert pi.message_id == f"<{pi.notification_id}@safetymon>"
    assert len({p.notification_id for p in plans}) == len(plans) == 3


def test_subject_line_lets_a_safety_officer_triage_from_the_inbox() -> None:
    signal = make_signal()

    assert subject_line(signal) == (
        "[U0 SAE] P-0042 site S01 — Serious adverse event — report due 2024-03-02 10:00 UTC"
    )


def test_subject_line_without_deadline_and_with_label() -> None:
    assert subject_line(make_signal(reporting_deadline=None)) == (
        "[U0 SAE] P-0042 site S01 — Serious adverse event"
    )
    labelled = make_signal(
        category="susar", deadline_label="7-day SUSAR report", urgency=Urgency.U0
    )
    assert subject_line(labelled).endswith("— 7-day SUSAR report due 2024-03-02 10:00 UTC")
    assert subject_line(labelled).startswith("[U0 SUSAR] ")


def test_subject_marks_updates_and_retractions() -> None:
    original = make_signal()

    assert subject_line(make_update(original)).startswith("[U0 SAE UPDATE] ")
    assert subject_line(make_update(original, status="retracted")).startswith("[U0 SAE RETRACTED] ")


def test_update_threads_under_the_original_message() -> None:
    """An update refers to the Message-ID the same recipient got for the original signal."""
    original = make_signal()
    routing = make_routing()
    first = {p.address: p for p in plan_notifications(original, routing)}

    updates = plan_notifications(make_update(original), routing)

    for plan in updates:
        assert plan.references == first[plan.address].message_id
        assert plan.notification_id != first[plan.address].notification_id


@pytest.mark.parametrize(
    "evil", ["Serious\r\nBcc: x@evil.example", "SAE\nX: y", "a\u2028b\x00c\x85d"]
)
def test_subject_never_contains_cr_or_lf(evil: str) -> None:
    """Defence in depth: even a title that bypassed the schema cannot break the header."""
    signal = make_signal()
    signal = signal.model_copy(
        update={"payload": signal.payload.model_copy(update={"title": evil})}
    )

    plans = plan_notifications(signal, make_routing())

    for plan in plans:
        assert "\r" not in plan.subject
        assert "\n" not in plan.subject
        assert "\u2028" not in plan.subject
        assert "\x00" not in plan.subject


@pytest.mark.parametrize("evil", ["Serious\r\nBcc: x@evil.example", "SAE\nX: y", "a\x00b"])
def test_schema_refuses_a_title_with_control_characters(evil: str) -> None:
    """The signal contract itself keeps CR/LF out of anything that becomes a header."""
    with pytest.raises(ValidationError, match="title"):
        make_signal(title=evil)


def test_one_line_collapses_control_characters() -> None:
    assert one_line("  a\r\n\tb  c ") == "a b c"


def test_context_holds_what_a_safety_officer_needs_and_no_identifying_values() -> None:
    signal = make_signal(values={"ctcae_grade": 3, "patient_name": "x", "date_of_birth": "y"})

    plan = plan_notifications(signal, make_routing(), display_tz=ZoneInfo("Asia/Shanghai"))[0]

    context = plan.context
    assert context["participant_id"] == "P-0042"
    assert context["rule"] == "sae-reported v1"
    assert context["values"] == [["ctcae_grade", "3"]]
    assert context["values_withheld"] == 2
    assert context["deadline"]["utc"] == "2024-03-02 10:00 UTC"
    assert context["deadline"]["local"] == "2024-03-02 18:00 Asia/Shanghai"
    json.dumps(context)  # stored in the outbox as JSON


def test_fallback_note_reaches_the_safety_officer_context() -> None:
    plans = plan_notifications(make_signal(site_id="S03"), make_routing())

    assert [p.role for p in plans] == [Role.SAFETY_OFFICER]
    assert "site S03" in plans[0].context["notes"][0]


def test_message_id_format() -> None:
    plan = plan_notifications(make_signal(), make_routing())[0]

    assert message_id_for(plan.notification_id) == plan.message_id


def test_retry_delay_grows_exponentially_with_jitter_and_a_cap() -> None:
    assert retry_delay(1, jitter=0.0) == 0.5
    assert retry_delay(1, jitter=1.0) == 1.0
    assert retry_delay(3, jitter=1.0) == 4.0
    assert retry_delay(50, jitter=1.0) == 60.0
    assert retry_delay(50, jitter=0.0) == 30.0


def test_audit_chain_verifies_and_locates_a_tampered_entry() -> None:
    plans = plan_notifications(make_signal(), make_routing())
    facts: list[audit.AuditFact] = [audit.intended_fact(p, now=NOW) for p in plans]
    facts.append(audit.sent_fact(plans[0], attempt=1, smtp_reply="250 ok", now=NOW))
    entries, head = audit.link(audit.ChainHead(), facts)

    assert audit.verify_chain(entries) == audit.ChainCheck(True, 4, head.hash)

    wire = json.loads(entries[1].wire)
    wire["payload"]["address"] = "attacker@evil.example"
    tampered = [*entries[:1], replace(entries[1], wire=json.dumps(wire)), *entries[2:]]
    check = audit.verify_chain(tampered)
    assert (check.ok, check.bad_seq) == (False, 2)
    assert "edited" in (check.problem or "")

    missing = [entries[0], *entries[2:]]
    assert audit.verify_chain(missing).bad_seq == 3
