"""Access control of the notify HTTP API against a running service.

The role matrix below is the specification: every (caller, endpoint) pair is requested for
real and must be allowed or denied exactly as listed. "Allowed" means the request got past
the credential check (the route may still answer 404, 409 or 422 on its own terms).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import httpx
import nats
import pytest

from kit.auth import Role as TokenRole
from kit.auth import TokenStore
from schemas import Role, SignalRaised, Subjects
from services.notify.config import Settings
from services.notify.core.ack import AckClaims, sign_ack
from services.notify.core.plan import notification_id_for
from services.notify.main import build_app
from services.notify.service import NotifyService
from tests.factories import unique
from tests.unit.notify.factories import ROUTING_TOML, SAFETY_OFFICER, make_signal

pytestmark = pytest.mark.integration

SECRET = "notify-auth-test-ack-key-0123456789"  # noqa: S105 - a test key, not a credential
#: Per role: the token's site, if the role is per site.
ROLES: dict[str, str | None] = {
    "submitter": "S01",
    "safety_officer": None,
    "investigator": "S01",
    "dsmb": None,
    "auditor": None,
    "admin": None,
}
CALLERS = (*ROLES, "anonymous", "revoked", "unknown")
ENDPOINTS = (
    "GET /health",
    "GET /v1/ack?token=",
    "POST /v1/ack",
    "GET /v1/notifications?signal=<S01>",
    "GET /v1/notifications?participant=<S02>",
    "POST /v1/signals/<S01>/ack",
    "POST /v1/signals/<S02>/ack",
    "GET /openapi.json",
    "GET /docs",
)
_EVERYONE = set(CALLERS)
_ALLOWED: dict[str, set[str]] = {
    "GET /health": _EVERYONE,
    # The signed link is its own credential (HMAC over notification, signal and expiry).
    "GET /v1/ack?token=": _EVERYONE,
    "POST /v1/ack": _EVERYONE,
    "GET /v1/notifications?signal=<S01>": {"safety_officer", "investigator", "auditor", "admin"},
    "GET /v1/notifications?participant=<S02>": {"safety_officer", "auditor", "admin"},
    # Both signals are routed to the safety officer only (test_notify_ack_authority.py has
    # the whole role x site x alert matrix of acknowledgements).
    "POST /v1/signals/<S01>/ack": {"safety_officer", "admin"},
    "POST /v1/signals/<S02>/ack": {"safety_officer", "admin"},
    "GET /openapi.json": set(ROLES),
    "GET /docs": set(),  # the interactive pages are off: 404 for everyone
}
MATRIX: dict[tuple[str, str], str | int] = {
    (caller, endpoint): "allowed"
    if caller in _ALLOWED[endpoint]
    else (403 if caller in ROLES else 401)
    for caller in CALLERS
    for endpoint in ENDPOINTS
}
MATRIX.update({(caller, "GET /docs"): 404 for caller in CALLERS})
# Another site's signal or participant is answered as a missing one: the investigator
# learns nothing.
MATRIX[("investigator", "POST /v1/signals/<S02>/ack")] = 404
MATRIX[("investigator", "GET /v1/notifications?participant=<S02>")] = 404


@pytest.fixture
async def notify(
    tmp_path: Path, nats_url: str, namespace: str, smtp_server
) -> AsyncIterator[tuple[NotifyService, dict[str, str]]]:
    """A notify service with one token per role, one revoked and one unknown."""
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING_TOML, encoding="utf-8")
    settings = Settings(
        data_dir=tmp_path / "data", nats_url=nats_url, namespace=namespace,
        smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_timeout=5.0,
        mail_from="safetymon@trial.example", routing=routing, ack_secret=SECRET,
        escalation_minutes=60.0,
    )  # fmt: skip
    tokens = TokenStore(settings.tokens_path)
    secrets = {
        role: tokens.create(f"{role}-1", TokenRole(role), site)[1] for role, site in ROLES.items()
    }
    revoked, secrets["revoked"] = tokens.create("revoked-1", TokenRole.admin)
    tokens.revoke(revoked.token_id)
    secrets["unknown"] = "smt_" + "0" * 43
    service = build_app(settings)
    await service.start()
    yield service, secrets
    await service.stop()


async def _publish(nats_url: str, namespace: str, *signals: SignalRaised) -> None:
    subjects = Subjects(namespace)
    nc = await nats.connect(nats_url)
    for signal in signals:
        await nc.jetstream().publish(
            subjects.signal_subject(signal.event_type),
            json.dumps(signal.model_dump(mode="json")).encode(),
            stream=subjects.signals_stream,
            headers={"Nats-Msg-Id": str(signal.event_id)},
        )
    await nc.close()


async def _recorded(service: NotifyService, *signal_ids: UUID) -> None:
    deadline = time.monotonic() + 15
    for signal_id in signal_ids:
        while not await service.notifications(signal_id):
            assert time.monotonic() < deadline, "notify did not record the signals in time"
            await asyncio.sleep(0.02)


def _link_token(signal: SignalRaised) -> str:
    notification = notification_id_for(signal.event_id, Role.SAFETY_OFFICER, SAFETY_OFFICER)
    expiry = datetime.now(UTC) + timedelta(hours=1)
    return sign_ack(AckClaims(notification, signal.event_id, expiry), key=SECRET.encode())


async def _call(
    client: httpx.AsyncClient, endpoint: str, ids: dict[str, SignalRaised], link: str
) -> httpx.Response:
    s01, s02 = ids["S01"], ids["S02"]
    requests = {
        "GET /health": ("GET", "/health", {}),
        "GET /v1/ack?token=": ("GET", "/v1/ack", {"params": {"token": link}}),
        "POST /v1/ack": ("POST", "/v1/ack", {"data": {"token": link, "reason": "seen"}}),
        "GET /v1/notifications?signal=<S01>": (
            "GET", "/v1/notifications", {"params": {"signal": str(s01.event_id)}},
        ),
        "GET /v1/notifications?participant=<S02>": (
            "GET", "/v1/notifications", {"params": {"participant": s02.participant_id}},
        ),
        "POST /v1/signals/<S01>/ack": (
            "POST", f"/v1/signals/{s01.event_id}/ack", {"json": {"reason": "reviewed"}},
        ),
        "POST /v1/signals/<S02>/ack": (
            "POST", f"/v1/signals/{s02.event_id}/ack", {"json": {"reason": "reviewed"}},
        ),
        "GET /openapi.json": ("GET", "/openapi.json", {}),
        "GET /docs": ("GET", "/docs", {}),
    }  # fmt: skip
    method, path, options = requests[endpoint]
    return await client.request(method, path, **options)  # type: ignore[arg-type]


async def test_role_matrix_of_the_notify_http_api(notify, nats_url: str, namespace: str) -> None:
    service, secrets = notify
    ids = {
        site: make_signal(
            site_id=site, participant_id=unique("P"), recipients=(Role.SAFETY_OFFICER,)
        )
        for site in ("S01", "S02")
    }
    via_link = make_signal(participant_id=unique("P"), recipients=(Role.SAFETY_OFFICER,))
    await _publish(nats_url, namespace, *ids.values(), via_link)
    await _recorded(service, *(s.event_id for s in (*ids.values(), via_link)))
    link = _link_token(via_link)

    outcomes: dict[tuple[str, str], str | int] = {}
    for caller in CALLERS:
        secret = secrets.get(caller)
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        base = f"http://127.0.0.1:{service.http_port}"
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
            for endpoint in ENDPOINTS:
                response = await _call(client, endpoint, ids, link)
                status = response.status_code
                hidden = endpoint in (
                    "GET /docs",
                    "POST /v1/signals/<S02>/ack",
                    "GET /v1/notifications?participant=<S02>",
                )
                denied = status in (401, 403) or (hidden and status == 404)
                outcomes[caller, endpoint] = status if denied else "allowed"

    wrong = {k: (outcomes[k], v) for k, v in MATRIX.items() if outcomes[k] != v}
    assert wrong == {}, f"(caller, endpoint): (got, expected) {wrong}"


async def test_acknowledgement_is_attributed_to_the_token_and_held_to_its_site(
    notify, nats_url: str, namespace: str
) -> None:
    service, secrets = notify
    own = make_signal(site_id="S01", participant_id=unique("P"))
    other = make_signal(site_id="S02", participant_id=unique("P"))
    await _publish(nats_url, namespace, own, other)
    await _recorded(service, own.event_id, other.event_id)
    headers = {"Authorization": f"Bearer {secrets['investigator']}"}
    base = f"http://127.0.0.1:{service.http_port}"

    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
        refused = await client.post(f"/v1/signals/{other.event_id}/ack", json={"reason": "x"})
        claimed = await client.post(
            f"/v1/signals/{own.event_id}/ack", json={"by": "Dr Else", "reason": "on it"}
        )
        done = await client.post(f"/v1/signals/{own.event_id}/ack", json={"reason": "on it"})
        own_log = await client.get("/v1/notifications", params={"participant": own.participant_id})
        other_log = await client.get(
            "/v1/notifications", params={"participant": other.participant_id}
        )

    assert refused.status_code == 404  # as if it did not exist
    assert claimed.status_code == 422  # nobody names who acknowledged: the token does
    assert done.status_code == 200
    assert done.json()["by"] == "token:investigator-1"
    acks = [row for row in own_log.json() if row["event_type"] == "alert_acknowledged"]
    assert [(row["by"], row["reason"]) for row in acks] == [("token:investigator-1", "on it")]
    assert other_log.status_code == 404  # as if it did not exist
    assert "S02" not in json.dumps(own_log.json())
