"""Templates and MIME: text + HTML bodies, autoescaping, headers free of CR/LF."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from services.notify.adapters.jinja_renderer import JinjaRenderer
from services.notify.adapters.smtp_mailer import build_message
from services.notify.core.errors import HeaderInjectionError, RenderError
from services.notify.core.plan import plan_notifications
from services.notify.ports import OutgoingMail
from tests.unit.notify.factories import make_routing, make_signal

DATE = datetime(2024, 3, 1, 10, 0, 5, tzinfo=UTC)


def _plan(**signal):
    return plan_notifications(make_signal(**signal), make_routing())[0]


def test_text_and_html_carry_what_the_safety_officer_needs() -> None:
    plan = _plan()

    text, html = JinjaRenderer().render(plan)

    for body in (text, html):
        for expected in (
            "U0", "IMMEDIATE", "Serious adverse event", "P-0042", "S01", "sae-reported v1",
            "within 7 days after UC-MSC infusion", "00000000-0000-4000-8000-000000000001",
            "ctcae_grade", "alt_x_uln", "4.5", "2024-03-02 10:00 UTC", str(plan.signal_id),
        ):  # fmt: skip
            assert expected in body, expected
    assert "Arm:          B" in text


def test_html_escapes_markup_and_text_keeps_it_verbatim() -> None:
    plan = _plan(title="Rash <script>alert(1)</script>", reason="ALT > 3x ULN & TBIL > 2x ULN")

    text, html = JinjaRenderer().render(plan)

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "ALT &gt; 3x ULN &amp; TBIL" in html
    assert "Rash <script>alert(1)</script>" in text


def test_missing_context_value_is_a_render_error() -> None:
    plan = _plan()
    broken = replace(plan, context={k: v for k, v in plan.context.items() if k != "reason"})

    with pytest.raises(RenderError, match="reason"):
        JinjaRenderer().render(broken)


def test_message_is_multipart_alternative_with_deterministic_headers() -> None:
    plan = _plan()
    text, html = JinjaRenderer().render(plan)

    message = build_message(
        OutgoingMail(plan, text, html), mail_from="safetymon@x.example", date=DATE
    )

    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed["Message-ID"] == f"<{plan.notification_id}@safetymon>"
    assert parsed["X-Safetymon-Signal-Id"] == str(plan.signal_id)
    assert parsed["To"] == plan.address
    assert parsed["Subject"] == plan.subject
    assert parsed["Date"] == "Fri, 01 Mar 2024 10:00:05 +0000"
    assert parsed["Importance"] == "high"


def test_no_header_contains_cr_or_lf_even_for_a_hostile_title() -> None:
    # The schema refuses such a title; this checks the mailer's own defence behind it.
    signal = make_signal()
    hostile = signal.payload.model_copy(update={"title": "SAE\r\nBcc: someone@evil.example"})
    plan = plan_notifications(signal.model_copy(update={"payload": hostile}), make_routing())[0]
    text, html = JinjaRenderer().render(plan)

    raw = build_message(
        OutgoingMail(plan, text, html), mail_from="a@x.example", date=DATE
    ).as_bytes()

    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None
    assert all("\n" not in str(v) and "\r" not in str(v) for v in parsed.values())


def test_header_with_cr_or_lf_is_refused() -> None:
    plan = replace(_plan(), subject="SAE\r\nBcc: someone@evil.example")

    with pytest.raises(HeaderInjectionError, match="Subject"):
        build_message(OutgoingMail(plan, "t", "h"), mail_from="a@x.example", date=DATE)


def test_sae_and_death_explain_the_24_hour_clock_and_susar_the_7_15_day_clocks() -> None:
    """RULES.md §1: SAE to sponsor in 24 h; SUSAR 7 days (fatal/life-threatening) or 15."""
    renderer = JinjaRenderer()

    sae_text, sae_html = renderer.render(_plan(category="sae"))
    death_text, _ = renderer.render(_plan(category="death"))
    susar_text, susar_html = renderer.render(_plan(category="susar"))
    other_text, _ = renderer.render(_plan(category="hepatic_encephalopathy"))

    for body in (sae_text, sae_html, death_text):
        assert "within 24 h of" in body
        assert "2024-03-02 10:00 UTC" in body
    for body in (susar_text, susar_html):
        assert "7 calendar days" in body
        assert "15 days" in body
    assert "Regulatory clock" not in other_text
    assert "Why it fired" in other_text


def test_ack_link_appears_in_both_bodies_and_is_escaped_in_html() -> None:
    plan = _plan()
    url = "http://127.0.0.1:8081/v1/ack?token=a1.abc.def&x=<y>"

    text, html = JinjaRenderer().render(replace(plan, context={**plan.context, "ack_url": url}))

    assert url in text
    assert f"safetymon ack {plan.signal_id}" in text
    assert "token=a1.abc.def&amp;x=&lt;y&gt;" in html
    assert "<y>" not in html


def test_escalated_and_failover_copies_say_why_the_reader_gets_them() -> None:
    plan = _plan()
    context = {**plan.context, "escalation": {"level": 2, "waited": "120 min"},
               "failover_of": "investigator"}  # fmt: skip

    text, html = JinjaRenderer().render(replace(plan, context=context))

    for body in (text, html):
        assert "ESCALATED (level 2)" in body
        assert "after 120 min" in body
        assert "delivery to the investigator failed permanently" in body


def test_delivery_failure_alarm_renders_without_participant_data_beyond_the_code() -> None:
    from services.notify.core.failover import failover_plans

    plan = _plan()
    alarm = failover_plans(plan, make_routing(), error="550 5.1.1 <b>no such user</b>")[-1]

    text, html = JinjaRenderer().render(alarm)

    assert "550 5.1.1" in text
    assert "&lt;b&gt;no such user&lt;/b&gt;" in html
    assert f"safetymon notifications --signal {plan.signal_id}" in text
    assert "P-0042" in text


def test_a_same_event_reply_is_not_marked_important_like_a_page() -> None:
    """A second U0 finding of one fact rides on the page's thread: no 'Importance: high'."""
    page = _plan()
    reply = replace(
        page,
        context={**page.context, "same_event_as": {"rule": "SAE-01", "signal_id": "x"}},
    )
    for plan, importance in ((page, "high"), (reply, None)):
        text, html = JinjaRenderer().render(plan)
        message = build_message(
            OutgoingMail(plan, text, html), mail_from="safetymon@x.example", date=DATE
        )
        assert message["Importance"] == importance
