"""Notify's trail relay on a real NATS server: order, resume after a crash, harmless repeats."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from uuid import NAMESPACE_URL, uuid5

import nats
import pytest
import structlog

from schemas import Subjects
from services.notify.adapters.trail_relay import (
    TRAIL_SEQ_HEADER,
    TrailRelay,
    ensure_notify_stream,
)
from services.notify.core.audit import AuditEntry

pytestmark = pytest.mark.integration


class _Trail:
    """A committed trail that grows; the relay only reads it."""

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def commit(self, count: int) -> None:
        for _ in range(count):
            seq = len(self.entries) + 1
            event_id = uuid5(NAMESPACE_URL, f"trail:{seq}")
            wire = json.dumps({"event_id": str(event_id), "seq": seq})
            self.entries.append(
                AuditEntry(
                    seq=seq,
                    event_id=event_id,
                    event_type="notification_sent",
                    notification_id=event_id,
                    signal_id=event_id,
                    recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
                    wire=wire,
                    prev_hash="0" * 64,
                    hash=f"{seq:064x}",
                )
            )

    async def audit_entries_after(self, seq: int, *, limit: int) -> list[AuditEntry]:
        return [e for e in self.entries if e.seq > seq][:limit]


async def _stored(js: nats.js.JetStreamContext, stream: str) -> list[tuple[int, str, str]]:
    info = await js.stream_info(stream)
    rows = []
    for seq in range(1, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq=seq)
        headers = msg.headers or {}
        rows.append((int(headers[TRAIL_SEQ_HEADER]), headers["Nats-Msg-Id"], str(msg.subject)))
    return rows


async def _run_until(relay: TrailRelay, position: int) -> None:
    task = asyncio.create_task(relay.run())
    try:
        async with asyncio.timeout(10):
            while relay.position < position:
                await asyncio.sleep(0.02)
    finally:
        relay.stop()
        await task


async def test_relay_publishes_in_order_and_resumes_from_the_stream(
    nats_url: str, namespace: str
) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream = Subjects(namespace).notify_stream
    log = structlog.get_logger("test")
    try:
        await ensure_notify_stream(js, namespace)
        trail = _Trail()
        trail.commit(3)
        await _run_until(TrailRelay(js, trail, namespace=namespace, log=log), 3)
        # A crash after more commits: a new relay knows nothing but what the stream holds.
        trail.commit(2)
        second = TrailRelay(js, trail, namespace=namespace, log=log)
        assert await second.stored_position() == 3
        await _run_until(second, 5)
        stored = await _stored(js, stream)
        assert [seq for seq, _, _ in stored] == [1, 2, 3, 4, 5]
        assert [msg_id for _, msg_id, _ in stored] == [str(e.event_id) for e in trail.entries]
        assert {subject for _, _, subject in stored} == {f"{namespace}.notify.notification_sent.v1"}
        # A relay that lost its position republishes: JetStream drops every repeat.
        third = TrailRelay(js, trail, namespace=namespace, log=log)
        third.position = 0
        for entry in trail.entries:
            await third._publish(entry)
        assert len(await _stored(js, stream)) == 5
        info = await js.stream_info(stream)
        assert info.config.deny_delete and info.config.deny_purge
    finally:
        await js.delete_stream(stream)
        await nc.close()


async def test_request_subjects_are_not_captured_by_the_stream(
    nats_url: str, namespace: str
) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        await ensure_notify_stream(js, namespace)
        sub = await nc.subscribe(f"{namespace}.notify.ack")
        reply = asyncio.create_task(nc.request(f"{namespace}.notify.ack", b"{}", timeout=2))
        request = await sub.next_msg(timeout=2)
        await request.respond(b'{"from": "notify"}')
        assert (await reply).data == b'{"from": "notify"}'
        info = await js.stream_info(Subjects(namespace).notify_stream)
        assert info.state.messages == 0
    finally:
        await js.delete_stream(Subjects(namespace).notify_stream)
        await nc.close()
