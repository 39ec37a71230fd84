"""The console's pure core and its sessions: alert state and order, clocks, access, MELD."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas import GENESIS_HASH, canonical_bytes, chain_hash
from services.console.adapters.sessions import SessionStore
from services.console.core.access import Viewer
from services.console.core.alerts import Filters, countdown, fold_alerts, inbox_order
from services.console.core.events import Event, Source, parse_event
from services.console.core.timeline import lab_series, markers, meld_series, window
from services.console.core.trail import verify_trail

T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def _event(source: Source, event_type: str, *, at: datetime = T0, **fields: Any) -> Event:
    body = {
        "event_id": fields.pop("event_id", f"{event_type}-{at.isoformat()}"),
        "event_type": event_type,
        "occurred_at": at.isoformat(),
        "participant_id": "P-1",
        "site_id": "S01",
        **fields,
    }
    return parse_event(source, json.dumps(body).encode())


def _signal(sid: str, urgency: str, *, deadline: datetime | None = None, **kw: Any) -> Event:
    payload = {
        "rule_id": "sae-reported",
        "rule_version": 1,
        "category": "sae",
        "title": "SAE",
        "urgency": urgency,
        "reason": "r",
        "evidence_event_ids": ["e1"],
        "values": {},
        "reporting_deadline": deadline.isoformat() if deadline else None,
    }
    return _event("signal", "signal_raised", event_id=sid, payload=payload, **kw)


def _notify(kind: str, sid: str, **payload: Any) -> Event:
    return _event("notify", kind, event_id=f"{kind}-{sid}", payload={"signal_id": sid, **payload})


def test_acks_escalations_and_deliveries_fold_into_the_alert_even_when_they_come_first() -> None:
    events = [
        _notify("notification_sent", "a"),  # notify's stream ran ahead of the signals stream
        _signal("a", "U0"),
        _notify("alert_escalated", "a", level=1),
        _notify("alert_acknowledged", "a", by="token:so1", reason="seen"),
    ]

    alert = fold_alerts(events)["a"]

    assert (alert.state, alert.acknowledged_by, alert.escalation_level) == (
        "acknowledged",
        "token:so1",
        1,
    )
    assert alert.emails_sent == 1
    assert [e.event_type for e in alert.log] == [
        "notification_sent",
        "alert_escalated",
        "alert_acknowledged",
    ]


def test_inbox_puts_open_alerts_first_then_urgency_then_nearest_deadline() -> None:
    events = [
        _signal("u1", "U1"),
        _signal("u0-late", "U0", deadline=T0 + timedelta(days=7)),
        _signal("u0-soon", "U0", deadline=T0 + timedelta(hours=2)),
        _signal("u0-acked", "U0", deadline=T0),
        _notify("alert_acknowledged", "u0-acked", by="x", reason="y"),
        _signal("u0-gone", "U0", deadline=T0),
    ]
    retraction = _signal("r", "U0", signal_id="u0-gone", status="retracted")
    alerts = fold_alerts([*events, retraction]).values()

    order = [a.signal_id for a in inbox_order(alerts)]

    assert order == ["u0-soon", "u0-late", "u1", "u0-acked", "u0-gone"]
    assert [a.state for a in inbox_order(alerts)][-2:] == ["acknowledged", "retracted"]
    opened = [a.signal_id for a in alerts if Filters(state="open", urgency="U0").matches(a)]
    assert sorted(opened) == ["u0-late", "u0-soon"]


def test_countdown_reads_as_words_and_overdue_is_flagged() -> None:
    assert countdown(T0 + timedelta(hours=3, minutes=12), T0) == ("report due in 3 h 12 min", False)
    assert countdown(T0 - timedelta(minutes=25), T0) == ("overdue by 25 min", True)
    assert countdown(T0 + timedelta(days=6, hours=5), T0) == ("report due in 6 d 5 h", False)
    assert countdown(None, T0) == ("", False)


def test_investigators_see_their_own_site_only_and_submitters_nothing() -> None:
    investigator = Viewer("inv", "investigator", "S01")
    assert investigator.sees("S01") and not investigator.sees("S02")
    assert not investigator.sees(None)
    assert Viewer("so", "safety_officer", None).sees("S02")
    assert not Viewer("dsmb", "dsmb", None).sees("S01")
    assert not Viewer("sub", "submitter", "S01").sees("S01")


def _lab(loinc: str, value: float, at: datetime) -> Event:
    payload = {"loinc": loinc, "result": {"value": value, "unit": "u", "normalised_value": value}}
    return _event("fact", "lab_result_recorded", at=at, event_id=f"{loinc}{at}", payload=payload)


def test_meld_needs_all_three_labs_within_48_hours() -> None:
    labs = [
        _lab("1975-2", 171.0, T0),
        _lab("6301-6", 2.0, T0),
        _lab("2160-0", 88.4, T0),
        _lab("6301-6", 2.5, T0 + timedelta(hours=72)),
    ]

    meld = meld_series(lab_series(labs))

    # Bilirubin 10 mg/dL, INR 2.0, creatinine 1.0 mg/dL: MELD(i) 2.2897 -> 23.
    # At +72 h only the INR is fresh, so no MELD there.
    assert meld.points == ((T0, 23.0),)


def test_the_window_and_markers_pick_procedures_around_the_alert() -> None:
    infusion = _event(
        "fact",
        "treatment_administered",
        at=T0 - timedelta(days=1),
        payload={"treatment": "uc_msc_infusion"},
    )
    old = _event(
        "fact",
        "treatment_administered",
        at=T0 - timedelta(days=10),
        payload={"treatment": "plasma_exchange"},
    )

    assert window([old, infusion], T0) == [infusion]
    assert [m.label for m in markers([infusion, old])] == ["Plasma exchange", "UC-MSC infusion"]


def test_sessions_expire_after_idle_time_and_the_event_stream_does_not_keep_them_alive() -> None:
    now = [T0]
    store = SessionStore(idle=timedelta(minutes=30), now=lambda: now[0])
    session = store.create(Viewer("so", "safety_officer", None), "secret")

    now[0] = T0 + timedelta(minutes=20)
    assert store.get(session.sid, touch=False) is not None
    now[0] = T0 + timedelta(minutes=31)
    assert store.get(session.sid) is None
    assert store.get(session.sid) is None  # dropped, not merely refused once

    fresh = store.create(Viewer("so", "safety_officer", None), "secret")
    now[0] += timedelta(minutes=29)
    assert store.get(fresh.sid) is not None  # a request is use
    now[0] += timedelta(minutes=29)
    assert store.get(fresh.sid) is not None
    assert fresh.csrf_ok(fresh.csrf) and not fresh.csrf_ok("") and not fresh.csrf_ok(None)


def _chain(count: int) -> list[dict[str, Any]]:
    bodies, prev = [], GENESIS_HASH
    for seq in range(1, count + 1):
        wire = {"event_id": f"e{seq}", "payload": {"n": seq}}
        digest = chain_hash(prev, canonical_bytes(wire))
        bodies.append({**wire, "seq": seq, "prev_hash": prev, "hash": digest})
        prev = digest
    return bodies


def test_the_published_trail_verifies_and_an_edit_or_a_gap_is_located() -> None:
    bodies = _chain(4)
    assert verify_trail(reversed(bodies)).ok  # arrival order does not matter, seq does
    assert verify_trail(bodies).head == bodies[-1]["hash"]

    edited = [dict(b) for b in bodies]
    edited[2]["payload"] = {"n": 99}
    check = verify_trail(edited)
    assert (check.ok, check.length, check.problem) == (
        False,
        2,
        "entry 3: content does not match its hash",
    )
    gap = verify_trail([bodies[0], bodies[2]])
    assert gap.problem == "entry 2 is missing (found 3)"
