"""One site cannot suppress another site's SAE through the dedupe key (security).

A real ingest service (real NATS, real DuckDB file) and two per-site submitter tokens; plus
an ingest.duckdb written with the schema of earlier versions, migrated on open.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import duckdb
import httpx
import nats
import pytest
from pydantic import SecretStr

from kit.auth import Role, TokenStore
from schemas import GENESIS_HASH, Subjects, canonical_bytes, chain_hash
from services.ingest.adapters.duckdb_log import DuckDBEventLog
from services.ingest.config import Settings
from services.ingest.core.accept import Accepted, accept
from services.ingest.core.chain import LogHead, chain
from services.ingest.main import build_app
from services.ingest.service import IngestService
from tests.credentials import TEST_TOKEN
from tests.factories import enrolment, sae, unique

pytestmark = pytest.mark.integration


@dataclass
class Running:
    service: IngestService
    secrets: dict[str, str]

    async def post(self, who: str, items: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.secrets[who]}"}
        base = f"http://127.0.0.1:{self.service.http_port}"
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
            return await client.post("/v1/events", json=items)


@pytest.fixture
async def running(tmp_path: Path, nats_url: str) -> AsyncIterator[Running]:
    namespace = f"t{uuid4().hex[:12]}"
    tokens = TokenStore(tmp_path / "tokens.json")
    secrets = {s: tokens.create(f"sub-{s}", Role.submitter, s)[1] for s in ("S01", "S02")}
    secrets["admin"] = TEST_TOKEN
    service = build_app(
        Settings(data_dir=tmp_path, nats_url=nats_url, namespace=namespace, http_port=0,
                 bootstrap_token=SecretStr(TEST_TOKEN))
    )  # fmt: skip
    await service.start()
    try:
        yield Running(service, secrets)
    finally:
        await service.stop()
        nc = await nats.connect(nats_url)
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await nc.jetstream().delete_stream(Subjects(namespace).facts_stream)
        await nc.close()


async def _enrol(running: Running, site: str) -> str:
    participant = unique(f"P-{site}")
    response = await running.post(site, enrolment(site_id=site, participant_id=participant))
    assert response.status_code == 200, response.text
    return participant


async def test_a_planted_key_neither_suppresses_nor_reveals_another_sites_sae(running) -> None:
    p1, p2 = await _enrol(running, "S01"), await _enrol(running, "S02")
    ref = f"AE:{p2}:AE2"
    mine = sae("AE2", site_id="S01", participant_id=p1, source_ref=ref)
    planted = await running.post("S01", mine)

    real = await running.post("S02", sae("AE2", site_id="S02", participant_id=p2, source_ref=ref))
    probe = await running.post("S01", mine)

    assert planted.json()["accepted"] == 1
    [result] = real.json()["results"]
    assert result["status"] == "accepted", real.text
    assert result["event_id"] != planted.json()["results"][0]["event_id"]
    # S01 asking again learns only about its own record, never S02's event id.
    assert probe.json()["results"][0]["event_id"] == planted.json()["results"][0]["event_id"]
    assert result["event_id"] not in probe.text


async def test_a_repeat_is_a_duplicate_and_changed_content_a_conflict(running) -> None:
    p2 = await _enrol(running, "S02")
    ref = unique("AE")
    item = sae(site_id="S02", participant_id=p2, source_ref=ref, payload={"term": "Sepsis"})
    first = await running.post("S02", item)

    again = await running.post("S02", item)
    by_admin = await running.post("admin", item)
    changed = await running.post(
        "S02", [enrolment(site_id="S02", participant_id=unique("P")),
                {**item, "payload": {**item["payload"], "term": "Pneumonia"}}],
    )  # fmt: skip

    event_id = first.json()["results"][0]["event_id"]
    assert again.status_code == 200
    assert again.json()["results"] == [{"index": 0, "status": "duplicate", "event_id": event_id}]
    assert by_admin.json()["results"][0]["status"] == "duplicate"
    assert changed.status_code == 207
    assert (changed.json()["accepted"], changed.json()["rejected"]) == (1, 1)
    [error] = changed.json()["results"][1]["errors"]
    assert error["field"] == "source_ref"
    assert "index 1" in error["reason"] and "different content" in error["reason"]


# The event_log table as every version before scoped dedupe keys created it.
_OLD_SCHEMA = """
CREATE TABLE event_log (
    seq BIGINT PRIMARY KEY, event_id UUID NOT NULL UNIQUE, event_type VARCHAR NOT NULL,
    trial_id VARCHAR NOT NULL, site_id VARCHAR, participant_id VARCHAR,
    occurred_at TIMESTAMPTZ NOT NULL, recorded_at TIMESTAMPTZ NOT NULL,
    source VARCHAR NOT NULL, source_ref VARCHAR NOT NULL, content VARCHAR NOT NULL,
    prev_hash VARCHAR NOT NULL, hash VARCHAR NOT NULL, UNIQUE (source, source_ref)
);
CREATE TABLE relay_position (name VARCHAR PRIMARY KEY, seq BIGINT NOT NULL);
INSERT INTO relay_position VALUES ('jetstream', 2);
"""
_ROWS = "SELECT seq, event_id, source, source_ref, content, prev_hash, hash FROM event_log"


def _old_log(path: Path) -> list[tuple[object, ...]]:
    """Write an old-schema file holding two facts with legacy event ids; return its rows."""
    at = datetime(2024, 3, 1, tzinfo=UTC)
    items = [enrolment(site_id="S01", participant_id="P-OLD"),
             sae(site_id="S01", participant_id="P-OLD", source_ref="AE:P-OLD:1")]  # fmt: skip
    wires = []
    for index, item in enumerate(items):
        result = accept(item, recorded_at=at, actor="token:old")
        assert isinstance(result, Accepted)
        # Earlier versions derived the id from (source, source_ref) alone.
        legacy = str(uuid4()) if index else result.wire["event_id"]
        wires.append({**result.wire, "event_id": legacy})
    entries = chain(wires, LogHead(0, GENESIS_HASH))
    con = duckdb.connect(str(path))
    con.execute(_OLD_SCHEMA)
    for wire, entry in zip(wires, entries, strict=True):
        con.execute(
            "INSERT INTO event_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [entry.seq, str(entry.event_id), entry.event_type, wire["trial_id"], wire["site_id"],
             wire["participant_id"], wire["occurred_at"], wire["recorded_at"], entry.source,
             entry.source_ref, entry.content.decode(), entry.prev_hash, entry.hash],
        )  # fmt: skip
    rows = con.execute(_ROWS + " ORDER BY seq").fetchall()
    con.close()
    return [*map(tuple, rows)], items  # type: ignore[return-value]


async def test_an_old_log_is_migrated_keeping_every_hashed_byte(tmp_path: Path) -> None:
    path = tmp_path / "ingest.duckdb"
    before, items = _old_log(path)  # type: ignore[misc]
    log = DuckDBEventLog(path)

    log.open()
    try:
        from services.ingest.core.dedupe import dedupe_key

        repeat = accept(items[1], recorded_at=datetime(2025, 1, 1, tzinfo=UTC), actor="token:new")
        assert isinstance(repeat, Accepted)
        known = await log.existing([dedupe_key(repeat.fact)])
        moved = {**items[1], "site_id": "S02", "participant_id": "P-NEW"}
        other_site = accept(moved, recorded_at=datetime(2025, 1, 1, tzinfo=UTC), actor="new")
        assert isinstance(other_site, Accepted)
        [appended] = await log.append([other_site.wire])
    finally:
        log.close()

    con = duckdb.connect(str(path), read_only=True)
    after = [tuple(row) for row in con.execute(_ROWS + " WHERE seq <= 2 ORDER BY seq").fetchall()]
    relay = con.execute("SELECT seq FROM relay_position").fetchall()
    every = con.execute("SELECT content, prev_hash, hash FROM event_log ORDER BY seq").fetchall()
    con.close()
    assert after == before  # ids, keys, hashed content and hashes all as they were
    assert relay == [(2,)]
    assert [k.event_id for k in known.values()] == [before[1][1]]
    assert appended.seq == 3
    prev = GENESIS_HASH
    for content, prev_hash, digest in every:  # what `safetymon audit verify` recomputes
        assert prev_hash == prev
        assert chain_hash(prev, canonical_bytes(json.loads(content))) == digest
        prev = digest


async def test_migrating_twice_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ingest.duckdb"
    before, _ = _old_log(path)  # type: ignore[misc]

    for _ in range(2):
        log = DuckDBEventLog(path)
        log.open()
        log.close()

    con = duckdb.connect(str(path), read_only=True)
    after = [tuple(row) for row in con.execute(_ROWS + " ORDER BY seq").fetchall()]
    con.close()
    assert after == before
