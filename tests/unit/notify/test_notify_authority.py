"""Who may acknowledge an alert: routed roles only, per-site roles at their own site, admin."""

from __future__ import annotations

import pytest

from schemas import Role
from services.notify.core.authority import AckRefusal, Audience, ack_refusal, audience_of

SAE_S01 = Audience("S01", frozenset({Role.INVESTIGATOR, Role.SAFETY_OFFICER}))
ESCALATED = Audience("S01", frozenset({Role.SAFETY_OFFICER, Role.BACKUP, Role.DSMB_CHAIR}))
REPORT = Audience("ALL", frozenset({Role.DSMB_CHAIR, Role.SAFETY_OFFICER}))


def _row(role: str, site: str = "S01", event_type: str = "notification_intended") -> dict:
    return {"event_type": event_type, "role": role, "site_id": site}


def test_the_audience_is_every_intended_role_and_the_site() -> None:
    rows = [_row("investigator"), _row("safety_officer"), _row("dsmb_chair", event_type="x"),
            _row("nobody")]  # fmt: skip

    assert audience_of(rows) == SAE_S01


def test_a_signal_without_notifications_has_no_audience() -> None:
    assert audience_of([]) is None
    assert audience_of([_row("safety_officer", event_type="alert_acknowledged")]) is None


@pytest.mark.parametrize(
    ("role", "site", "audience", "expected"),
    [
        ("admin", None, None, None),
        ("admin", None, REPORT, None),
        ("safety_officer", None, SAE_S01, None),
        ("safety_officer", None, Audience("S01", frozenset({Role.BACKUP})), None),
        ("investigator", "S01", SAE_S01, None),
        ("dsmb", None, REPORT, None),
        ("dsmb", None, ESCALATED, None),
        ("investigator", "S02", SAE_S01, "hidden"),
        ("investigator", "S01", None, "hidden"),
        ("safety_officer", None, None, "hidden"),
        ("investigator", "S01", REPORT, "forbidden"),
        ("investigator", "S01", ESCALATED, "forbidden"),
        ("dsmb", None, SAE_S01, "forbidden"),
        ("auditor", None, SAE_S01, "forbidden"),
        ("submitter", "S01", SAE_S01, "forbidden"),
    ],
)
def test_who_may_acknowledge(
    role: str, site: str | None, audience: Audience | None, expected: str | None
) -> None:
    refusal = ack_refusal(role, site, audience)

    assert (refusal.kind if refusal else None) == expected


def test_a_forbidden_answer_names_the_roles_routed_to() -> None:
    refusal = ack_refusal("dsmb", None, SAE_S01)

    assert refusal == AckRefusal(
        "forbidden",
        "role dsmb may not acknowledge this alert: it was routed to investigator, "
        "safety_officer (admin may acknowledge any alert)",
    )
