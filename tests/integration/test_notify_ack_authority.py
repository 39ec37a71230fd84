"""Who may acknowledge which alert, through which channel (security).

A real notify service (real NATS, real SMTP, real DuckDB). Every (caller, alert kind) pair
acknowledges its own fresh alert over `POST /v1/signals/{id}/ack`, so no answer depends on
another. The rule: only a role the alert was routed to, a per-site role only at its own
site, and admin; another site's alert looks exactly like one that does not exist.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import nats
import pytest

from kit.auth import Role as TokenRole
from kit.auth import TokenStore
from schemas import ReportIssued, Role, SignalRaised, SignalUpdated, Subjects
from services.notify.config import Settings
from services.notify.core.ack import AckClaims, sign_ack
from services.notify.core.errors import AckKeyError
from services.notify.core.plan import notification_id_for
from services.notify.main import build_app
from services.notify.service import NotifyService
from tests.factories import unique
from tests.unit.notify.factories import ROUTING_TOML, SAFETY_OFFICER, make_signal, make_update
from tests.unit.notify.test_notify_report import make_report

pytestmark = pytest.mark.integration

SECRET = "ack-authority-test-key-0123456789abcdef"  # noqa: S105 - a test key, not a credential
#: caller -> (token role, site)
CALLERS: dict[str, tuple[TokenRole, str | None]] = {
    "admin": (TokenRole.admin, None),
    "safety_officer": (TokenRole.safety_officer, None),
    "investigator_s01": (TokenRole.investigator, "S01"),
    "investigator_s02": (TokenRole.investigator, "S02"),
    "dsmb": (TokenRole.dsmb, None),
    "auditor": (TokenRole.auditor, None),
    "submitter_s01": (TokenRole.submitter, "S01"),
}
KINDS = ("sae_s01", "sae_s02", "officer_only_s01", "dsmb_stop_report", "retracted_s01", "none")
#: The specification: HTTP status per (caller, alert kind).
EXPECTED: dict[str, tuple[int, ...]] = {
    #                  sae_s01 sae_s02 officer dsmb  retracted none
    "admin":            (200,   200,    200,    200,  410,      404),
    "safety_officer":   (200,   200,    200,    200,  410,      404),
    "investigator_s01": (200,   404,    403,    403,  410,      404),
    "investigator_s02": (404,   200,    404,    403,  404,      404),
    "dsmb":             (403,   403,    403,    200,  403,      404),
    "auditor":          (403,   403,    403,    403,  403,      403),
    "submitter_s01":    (403,   403,    403,    403,  403,      403),
}  # fmt: skip


@pytest.fixture
async def notify(
    tmp_path: Path, nats_url: str, namespace: str, smtp_server
) -> AsyncIterator[tuple[NotifyService, dict[str, str]]]:
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING_TOML, encoding="utf-8")
    settings = Settings(
        data_dir=tmp_path / "data", nats_url=nats_url, namespace=namespace,
        smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_timeout=5.0,
        mail_from="safetymon@trial.example", routing=routing, ack_secret=SECRET,
        escalation_minutes=60.0,
    )  # fmt: skip
    tokens = TokenStore(settings.tokens_path)
    secrets = {name: tokens.create(name, role, site)[1] for name, (role, site) in CALLERS.items()}
    service = build_app(settings)
    await service.start()
    yield service, secrets
    await service.stop()


async def _publish(nats_url: str, namespace: str, facts: list[object]) -> None:
    subjects = Subjects(namespace)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    for fact in facts:
        if isinstance(fact, ReportIssued):
            subject, stream = subjects.report_subject(), subjects.reports_stream
        else:
            assert isinstance(fact, SignalRaised | SignalUpdated)
            subject, stream = subjects.signal_subject(fact.event_type), subjects.signals_stream
        await js.publish(
            subject, json.dumps(fact.model_dump(mode="json")).encode(),  # type: ignore[attr-defined]
            stream=stream, headers={"Nats-Msg-Id": str(fact.event_id)},  # type: ignore[attr-defined]
        )  # fmt: skip
    await nc.close()


async def _recorded(service: NotifyService, ids: list[UUID]) -> None:
    deadline = time.monotonic() + 20
    for event_id in ids:
        while not await service.notifications(event_id):
            assert time.monotonic() < deadline, "notify did not record the alerts in time"
            await asyncio.sleep(0.02)


def _alerts() -> tuple[dict[str, UUID], list[object], list[UUID]]:
    """A fresh alert of every kind: ids to acknowledge, facts to publish, ids to wait for."""
    sae_s01 = make_signal(site_id="S01", participant_id=unique("P"))
    sae_s02 = make_signal(site_id="S02", participant_id=unique("P"))
    officer = make_signal(
        site_id="S01", participant_id=unique("P"), recipients=(Role.SAFETY_OFFICER,)
    )
    report = make_report("dsmb_ad_hoc")
    retracted = make_signal(site_id="S01", participant_id=unique("P"))
    retraction = make_update(retracted, status="retracted")
    ids = {
        "sae_s01": sae_s01.event_id, "sae_s02": sae_s02.event_id,
        "officer_only_s01": officer.event_id, "dsmb_stop_report": report.event_id,
        "retracted_s01": retracted.event_id, "none": uuid4(),
    }  # fmt: skip
    facts: list[object] = [sae_s01, sae_s02, officer, report, retracted, retraction]
    waits = [f.event_id for f in facts]  # type: ignore[attr-defined]
    return ids, facts, waits


async def test_who_may_acknowledge_which_alert(notify, nats_url: str, namespace: str) -> None:
    service, secrets = notify
    per_caller = {caller: _alerts() for caller in CALLERS}
    await _publish(nats_url, namespace, [f for _, facts, _ in per_caller.values() for f in facts])
    await _recorded(service, [i for _, _, waits in per_caller.values() for i in waits])
    base = f"http://127.0.0.1:{service.http_port}"

    got: dict[str, tuple[int, ...]] = {}
    bodies: dict[tuple[str, str], dict[str, object]] = {}
    for caller in CALLERS:
        headers = {"Authorization": f"Bearer {secrets[caller]}"}
        ids = per_caller[caller][0]
        statuses = []
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
            for kind in KINDS:
                answer = await client.post(f"/v1/signals/{ids[kind]}/ack", json={"reason": "seen"})
                statuses.append(answer.status_code)
                bodies[caller, kind] = {**answer.json(), "_id": str(ids[kind])}
        got[caller] = tuple(statuses)

    assert got == EXPECTED
    accepted = [b for b in bodies.values() if "via" in b]
    assert accepted and {b["via"] for b in accepted} == {"http"}
    assert bodies["dsmb", "dsmb_stop_report"]["by"] == "token:dsmb"
    # Another site's alert is answered exactly as an alert that does not exist.
    hidden = bodies["investigator_s02", "sae_s01"]
    missing = bodies["investigator_s02", "none"]
    assert hidden["error"] == str(missing["error"]).replace(str(missing["_id"]), str(hidden["_id"]))
    assert "retracted" in str(bodies["safety_officer", "retracted_s01"]["error"])
    forbidden = str(bodies["investigator_s01", "officer_only_s01"]["error"])
    assert "investigator" in forbidden and "safety_officer" in forbidden


async def test_the_channel_is_recorded_and_a_retracted_alerts_link_stops_working(
    notify, nats_url: str, namespace: str
) -> None:
    service, secrets = notify
    by_link = make_signal(site_id="S01", participant_id=unique("P"))
    retracted = make_signal(site_id="S01", participant_id=unique("P"))
    retraction = make_update(retracted, status="retracted")
    await _publish(nats_url, namespace, [by_link, retracted, retraction])
    await _recorded(service, [by_link.event_id, retracted.event_id, retraction.event_id])
    base = f"http://127.0.0.1:{service.http_port}"

    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        linked = await client.post("/v1/ack", data={"token": _link(by_link), "reason": "seen"})
        stale = await client.post("/v1/ack", data={"token": _link(retracted), "reason": "seen"})
        headers = {"Authorization": f"Bearer {secrets['safety_officer']}"}
        log = await client.get(
            "/v1/notifications", params={"signal": str(by_link.event_id)}, headers=headers
        )

    assert linked.status_code == 200
    assert stale.status_code == 410
    assert "retracted" in stale.text
    [ack] = [row for row in log.json() if row["event_type"] == "alert_acknowledged"]
    assert ack["by"] == f"safety_officer {SAFETY_OFFICER}"
    trail = await service.notifications(by_link.event_id)
    assert trail  # the delivery rows are there; the channel is in the audit fact's source_ref
    rows = [r for r in await _trail(service) if r["event_type"] == "alert_acknowledged"]
    assert any(r["source_ref"].endswith(":acknowledged:link") for r in rows)


async def test_an_alert_assigned_from_the_console_records_the_assignee_and_the_channel(
    notify, nats_url: str, namespace: str
) -> None:
    """Assigning is acknowledging on a named person's behalf: same fact, who and from where."""
    service, secrets = notify
    signal = make_signal(site_id="S01", participant_id=unique("P"))
    await _publish(nats_url, namespace, [signal])
    await _recorded(service, [signal.event_id])
    base = f"http://127.0.0.1:{service.http_port}"
    headers = {"Authorization": f"Bearer {secrets['safety_officer']}"}
    body = {"reason": "site team to review", "assign_to": "Dr Li Wei", "channel": "console"}
    assert signal.event_id in {a.state.signal_id for a in await service.open_alerts()}

    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        bogus = await client.post(
            f"/v1/signals/{signal.event_id}/ack", headers=headers,
            json={**body, "channel": "email"},
        )  # fmt: skip
        assigned = await client.post(
            f"/v1/signals/{signal.event_id}/ack", headers=headers, json=body
        )
        again = await client.post(f"/v1/signals/{signal.event_id}/ack", headers=headers, json=body)

    assert bogus.status_code == 422  # a channel notify does not know is refused, not recorded
    assert assigned.status_code == 200
    assert assigned.json()["by"] == "Dr Li Wei (assigned by token:safety_officer)"
    assert again.status_code == 409  # one acknowledgement per alert, assigned or not
    rows = [r for r in await _trail(service) if r["event_type"] == "alert_acknowledged"]
    mine = [r for r in rows if str(signal.event_id) in str(r["payload"])]
    assert [r["source_ref"].rsplit(":", 1)[-1] for r in mine] == ["console"]
    assert signal.event_id not in {a.state.signal_id for a in await service.open_alerts()}


async def _trail(service: NotifyService) -> list[dict[str, object]]:
    store = service.queries  # reading the trail the service wrote
    return [json.loads(entry.wire) for entry in await store.audit_entries()]


def _link(signal: SignalRaised) -> str:
    notification = notification_id_for(signal.event_id, Role.SAFETY_OFFICER, SAFETY_OFFICER)
    claims = AckClaims(notification, signal.event_id, datetime.now(UTC) + timedelta(hours=1))
    return sign_ack(claims, key=SECRET.encode())


async def test_an_empty_ack_secret_file_stops_the_service_from_starting(
    tmp_path: Path, nats_url: str, namespace: str, smtp_server
) -> None:
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING_TOML, encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    (data / "ack.secret").write_text("", encoding="ascii")
    service = build_app(
        Settings(data_dir=data, nats_url=nats_url, namespace=namespace, routing=routing,
                 smtp_host=smtp_server.host, smtp_port=smtp_server.port)
    )  # fmt: skip

    with pytest.raises(AckKeyError, match=r"ack\.secret must be at least 32 bytes"):
        await service.start()
