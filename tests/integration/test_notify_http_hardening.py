"""Notify's HTTP API after the attack's "low" findings, against a running service.

Real NATS, SMTP and DuckDB. An investigator cannot tell another site's participant or signal
from one that does not exist; the link's confirmation page offers no form for an alert that
was retracted or acknowledged already; deeply nested JSON is a client error.
"""

from __future__ import annotations

import httpx
import pytest

from services.notify.service import NotifyService
from tests.factories import unique
from tests.integration.test_notify_ack_authority import _link, _publish, _recorded, notify
from tests.unit.notify.factories import make_signal, make_update

pytestmark = pytest.mark.integration
__all__ = ["notify"]  # the running service fixture, shared with the authority tests
Running = tuple[NotifyService, dict[str, str]]


async def test_another_sites_participant_and_signal_look_like_unknown_ones(
    notify: Running, nats_url: str, namespace: str
) -> None:
    service, secrets = notify
    own = make_signal(site_id="S01", participant_id=unique("P"))
    other = make_signal(site_id="S02", participant_id=unique("P"))
    await _publish(nats_url, namespace, [own, other])
    await _recorded(service, [own.event_id, other.event_id])
    headers = {"Authorization": f"Bearer {secrets['investigator_s01']}"}
    base = f"http://127.0.0.1:{service.http_port}"

    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
        asks = {
            "own": {"participant": own.participant_id},
            "other": {"participant": other.participant_id},
            "unknown": {"participant": unique("P")},
            "other_signal": {"signal": str(other.event_id)},
            "unknown_signal": {"signal": str(make_signal().event_id)},
        }
        answers = {k: await client.get("/v1/notifications", params=v) for k, v in asks.items()}

    assert answers["own"].status_code == 200
    hidden = {k: (a.status_code, a.json()) for k, a in answers.items() if k != "own"}
    assert hidden == dict.fromkeys(hidden, (404, {"error": "not found"}))


async def test_the_link_page_says_a_retracted_alert_needs_nothing(
    notify: Running, nats_url: str, namespace: str
) -> None:
    service, _ = notify
    retracted = make_signal(site_id="S01", participant_id=unique("P"))
    await _publish(nats_url, namespace, [retracted, make_update(retracted, status="retracted")])
    await _recorded(service, [retracted.event_id])
    base = f"http://127.0.0.1:{service.http_port}"

    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        page = await client.get("/v1/ack", params={"token": _link(retracted)})
        for _ in range(100):  # the retraction may be recorded just after the signal
            if page.status_code == 410:
                break
            page = await client.get("/v1/ack", params={"token": _link(retracted)})

    assert page.status_code == 410
    assert "retracted" in page.text
    assert "<form" not in page.text


async def test_the_link_page_says_an_acknowledged_alert_is_done(
    notify: Running, nats_url: str, namespace: str
) -> None:
    service, _ = notify
    signal = make_signal(site_id="S01", participant_id=unique("P"))
    await _publish(nats_url, namespace, [signal])
    await _recorded(service, [signal.event_id])
    base = f"http://127.0.0.1:{service.http_port}"

    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        before = await client.get("/v1/ack", params={"token": _link(signal)})
        acknowledged = await client.post("/v1/ack", data={"token": _link(signal)})
        after = await client.get("/v1/ack", params={"token": _link(signal)})

    assert before.status_code == 200
    assert "<form" in before.text
    assert acknowledged.status_code == 200
    assert after.status_code == 409
    assert "already acknowledged" in after.text
    assert "<form" not in after.text
    assert "@" not in after.text  # who acknowledged (an address, a name) is not shown


async def test_deeply_nested_json_in_an_ack_body_is_a_client_error(notify: Running) -> None:
    service, secrets = notify
    base = f"http://127.0.0.1:{service.http_port}"
    headers = {"Authorization": f"Bearer {secrets['safety_officer']}"}
    body = b'{"reason": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"

    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
        answer = await client.post(f"/v1/signals/{make_signal().event_id}/ack", content=body)
        too_big = await client.post(
            f"/v1/signals/{make_signal().event_id}/ack", content=b" " * 100_000
        )

    assert answer.status_code == 422
    assert too_big.status_code == 413
