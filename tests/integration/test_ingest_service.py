"""Ingest against the real NATS server: HTTP in, hash-chained log, confirmed publish."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from pydantic import SecretStr

from schemas import GENESIS_HASH, Subjects, canonical_bytes, chain_hash
from services.ingest.adapters.duckdb_log import DuckDBEventLog
from services.ingest.config import Settings
from services.ingest.core.accept import Accepted, accept
from services.ingest.main import build_app
from services.ingest.service import IngestService
from tests.credentials import AUTH, TEST_TOKEN
from tests.factories import enrolment, lab, sae

pytestmark = pytest.mark.integration


@pytest.fixture
async def ingest(tmp_path: Path, nats_url: str, namespace: str) -> AsyncIterator[IngestService]:
    service = build_app(
        Settings(
            data_dir=tmp_path,
            nats_url=nats_url,
            namespace=namespace,
            http_port=0,
            bootstrap_token=SecretStr(TEST_TOKEN),
        )
    )
    await service.start()
    yield service
    await service.stop()


async def _post(service: IngestService, body: Any, *, raw: bytes | None = None) -> httpx.Response:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{service.http_port}", headers=AUTH
    ) as client:
        if raw is not None:
            return await client.post(
                "/v1/events", content=raw, headers={"content-type": "application/json"}
            )
        return await client.post("/v1/events", json=body)


async def _stream_messages(nats_url: str, namespace: str) -> list[nats.aio.msg.Msg]:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream = Subjects(namespace).facts_stream
    count = (await js.stream_info(stream)).state.messages
    messages = [await js.get_msg(stream, seq) for seq in range(1, count + 1)]
    await nc.close()
    return messages


async def test_posted_events_are_chained_logged_and_published_with_their_id(
    ingest: IngestService, nats_url: str, namespace: str
) -> None:
    """Each accepted event is appended to the chain and published with Nats-Msg-Id = event id."""
    items = [enrolment(participant_id="P-101"), lab(participant_id="P-101")]

    response = await _post(ingest, items)
    await ingest.drained(10)
    messages = await _stream_messages(nats_url, namespace)

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "accepted"]
    assert [m.headers["Nats-Msg-Id"] for m in messages] == [r["event_id"] for r in results]
    prev = GENESIS_HASH
    for message in messages:
        body = json.loads(message.data)
        assert body["prev_hash"] == prev
        assert body["hash"] == chain_hash(prev, canonical_bytes(body))
        prev = body["hash"]
    assert json.loads(messages[1].data)["payload"]["result"]["normalised_value"] == 85.5


async def test_the_same_event_posted_twice_is_a_duplicate_and_published_once(
    ingest: IngestService, nats_url: str, namespace: str
) -> None:
    """Dedupe on (source, source_ref): the second post answers duplicate with the same id."""
    item = sae(participant_id="P-102")

    first = (await _post(ingest, item)).json()["results"][0]
    second = (await _post(ingest, item)).json()["results"][0]
    await ingest.drained(10)

    assert (first["status"], second["status"]) == ("accepted", "duplicate")
    assert first["event_id"] == second["event_id"]
    assert len(await _stream_messages(nats_url, namespace)) == 1


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        (b'{"event_type": "participant_enrolled",', 400, "not valid JSON"),
        (b'{"value": NaN}', 400, "NaN is not a number JSON allows"),
        (
            json.dumps({**enrolment(), "event_type": "lab_resut"}).encode(),
            422,
            "unknown event type 'lab_resut'",
        ),
        (
            json.dumps({k: v for k, v in enrolment().items() if k != "participant_id"}).encode(),
            422,
            "participant_id: Field required",
        ),
        (
            json.dumps(lab(unit="mg/furlong")).encode(),
            422,
            "payload.result.unit: unit 'mg/furlong'",
        ),
        (
            json.dumps(lab(value=1.0)).replace("1.0", "1e999").encode(),
            422,
            "payload.result.value: Input should be a finite number",
        ),
        (
            json.dumps(lab(occurred_at="2024-03-01T08:00:00")).encode(),
            422,
            "occurred_at: Input should have timezone info",
        ),
        (b"[]", 400, "empty array"),
    ],
)
async def test_malformed_input_is_rejected_specifically_and_leaves_the_log_unchanged(
    ingest: IngestService, nats_url: str, namespace: str, body: bytes, status: int, expected: str
) -> None:
    """Bad JSON, unknown type, missing participant, unknown unit, non-finite, naive time."""
    await _post(ingest, enrolment(participant_id="P-103"))
    await ingest.drained(10)
    head_before = (
        await httpx.AsyncClient(headers=AUTH).get(
            f"http://127.0.0.1:{ingest.http_port}/v1/log/head"
        )
    ).json()

    response = await _post(ingest, None, raw=body)
    head_after = (
        await httpx.AsyncClient(headers=AUTH).get(
            f"http://127.0.0.1:{ingest.http_port}/v1/log/head"
        )
    ).json()

    assert response.status_code == status
    answer = response.json()
    text = answer.get("error") or "; ".join(
        f"{e['field']}: {e['reason']}" for r in answer["results"] for e in r.get("errors", [])
    )
    assert expected in text
    assert head_after == head_before
    assert len(await _stream_messages(nats_url, namespace)) == 1


async def test_a_mixed_batch_accepts_the_good_and_names_the_bad(ingest: IngestService) -> None:
    """Each event is wholly applied or not at all; the answer says which and why."""
    response = await _post(ingest, [enrolment(participant_id="P-104"), lab(unit="parsecs")])

    assert response.status_code == 207
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "rejected"]


async def test_events_appended_but_unconfirmed_are_published_after_a_restart(
    tmp_path: Path, nats_url: str, namespace: str
) -> None:
    """A crash between append and publish loses nothing: the relay republishes from the log."""
    from datetime import UTC, datetime

    log = DuckDBEventLog(tmp_path / "ingest.duckdb")
    log.open()
    accepted = [
        accept(lab(participant_id="P-105"), recorded_at=datetime.now(UTC), actor="t")
        for _ in range(3)
    ]
    assert all(isinstance(a, Accepted) for a in accepted)
    await log.append([a.wire for a in accepted])  # type: ignore[union-attr]
    log.close()  # the process "died" here: appended, never published

    service = build_app(
        Settings(data_dir=tmp_path, nats_url=nats_url, namespace=namespace), http=False
    )
    await service.start()
    await service.drained(10)
    await service.stop()

    messages = await _stream_messages(nats_url, namespace)
    assert [m.headers["Nats-Msg-Id"] for m in messages] == [str(a.fact.event_id) for a in accepted]  # type: ignore[union-attr]
