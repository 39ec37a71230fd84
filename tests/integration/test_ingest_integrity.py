"""Ingest refuses to build on a log that was tampered with while it was stopped (security).

A real ingest service (real NATS, real DuckDB file): facts are posted, ingest stops, the
file is edited the ways an attacker with the file would, and the next start must refuse.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from uuid import uuid4

import duckdb
import httpx
import nats
import pytest
from pydantic import SecretStr

from schemas import GENESIS_HASH, Subjects, chain_hash
from services.ingest.adapters.head_anchor import anchor_stream, read_heads
from services.ingest.config import Settings
from services.ingest.core.errors import LogIntegrityError
from services.ingest.main import build_app
from tests.credentials import TEST_TOKEN
from tests.factories import enrolment, lab, unique

pytestmark = pytest.mark.integration


@pytest.fixture
async def settings(tmp_path: Path, nats_url: str) -> AsyncIterator[Settings]:
    namespace = f"t{uuid4().hex[:12]}"
    yield Settings(
        data_dir=tmp_path, nats_url=nats_url, namespace=namespace, http_port=0,
        bootstrap_token=SecretStr(TEST_TOKEN), clock_tick_seconds=0, head_anchor_seconds=0.2,
    )  # fmt: skip
    nc = await nats.connect(nats_url)
    for stream in (Subjects(namespace).facts_stream, anchor_stream(namespace)):
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await nc.jetstream().delete_stream(stream)
    await nc.close()


async def _fill(settings: Settings, count: int = 6) -> None:
    """Start ingest, log an enrolment at S01 and some labs, stop it."""
    service = build_app(settings)
    await service.start()
    try:
        participant = unique("P")
        items = [enrolment(site_id="S01", participant_id=participant)]
        items += [lab(participant_id=participant, site_id="S01") for _ in range(count - 1)]
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{service.http_port}",
            headers={"Authorization": f"Bearer {TEST_TOKEN}"},
        ) as client:
            response = await client.post("/v1/events", json=items)
        assert response.status_code == 200, response.text
        await service.drained(30)
    finally:
        await service.stop()


def _tamper(path: Path, edit: Callable[[duckdb.DuckDBPyConnection], object]) -> None:
    """Edit the stopped service's file as someone holding it could (triggers dropped first)."""
    con = duckdb.connect(str(path))
    try:
        con.execute("DROP TRIGGER IF EXISTS event_log_no_update ON event_log")
        con.execute("DROP TRIGGER IF EXISTS event_log_no_delete ON event_log")
        edit(con)
    finally:
        con.close()


async def _start_refused(settings: Settings, *expected: str) -> None:
    service = build_app(settings)
    with pytest.raises(LogIntegrityError) as refused:
        await service.start()
    for words in expected:
        assert words in str(refused.value)


def _rechain(con: duckdb.DuckDBPyConnection) -> None:
    """Edit entry 2's content, then recompute every hash from there on: the file verifies."""
    rows = con.execute("SELECT seq, content FROM event_log ORDER BY seq").fetchall()
    prev = GENESIS_HASH
    for seq, stored in rows:
        document = json.loads(stored)
        if seq == 2:
            document["payload"]["result"]["value"] = 0.1
        content = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = chain_hash(prev, content.encode("utf-8"))
        con.execute(
            "UPDATE event_log SET content = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            [content, prev, digest, seq],
        )
        prev = digest


async def test_the_log_refuses_update_and_delete(settings: Settings) -> None:
    await _fill(settings)
    con = duckdb.connect(str(settings.duckdb_path))
    try:
        with pytest.raises(duckdb.Error, match="append-only"):
            con.execute("UPDATE event_log SET site_id = 'S02' WHERE seq = 1")
        with pytest.raises(duckdb.Error, match="append-only"):
            con.execute("DELETE FROM event_log WHERE seq = 6")
        # The relay position lives in its own table and still moves.
        con.execute("UPDATE relay_position SET seq = seq WHERE name = 'jetstream'")
    finally:
        con.close()


async def test_an_edited_last_entry_stops_the_start(settings: Settings) -> None:
    await _fill(settings)
    _tamper(settings.duckdb_path, lambda con: con.execute(
        "UPDATE event_log SET content = replace(content, '\"S01\"', '\"S02\"') WHERE seq = 6"
    ))  # fmt: skip
    await _start_refused(settings, "entry 6", "edited")


async def test_a_deleted_last_entry_stops_the_start(settings: Settings) -> None:
    await _fill(settings)
    _tamper(settings.duckdb_path, lambda con: con.execute("DELETE FROM event_log WHERE seq = 6"))
    await _start_refused(settings, "head 6 was published")


async def test_an_edited_site_column_stops_the_start(settings: Settings) -> None:
    """The site check reads site_id: a column that no longer matches its hashed content."""
    await _fill(settings)
    _tamper(settings.duckdb_path, lambda con: con.execute(
        "UPDATE event_log SET site_id = 'S02' WHERE seq = 1"
    ))  # fmt: skip
    await _start_refused(settings, "entry 1", "hashed content")


async def test_a_rechained_log_disagrees_with_the_published_head(settings: Settings) -> None:
    await _fill(settings)
    _tamper(settings.duckdb_path, _rechain)
    await _start_refused(settings, "entry 6", "rewritten and re-hashed")


async def test_the_head_is_published_outside_the_file(settings: Settings) -> None:
    await _fill(settings)
    nc = await nats.connect(settings.nats_url)
    try:
        heads = [json.loads(h) for h in await read_heads(nc.jetstream(), settings.namespace)]
    finally:
        await nc.close()
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        [(head,)] = con.execute("SELECT hash FROM event_log WHERE seq = 6").fetchall()
    finally:
        con.close()
    assert (heads[-1]["seq"], heads[-1]["hash"]) == (6, head)


async def test_an_intact_log_starts_again_and_keeps_appending(settings: Settings) -> None:
    await _fill(settings)
    await _fill(settings)  # the second start checked the first run's tail and head
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        assert con.execute("SELECT max(seq) FROM event_log").fetchall() == [(12,)]
    finally:
        con.close()
