"""Ingest throughput: validation + DuckDB append + confirmed JetStream publish, side by side
with a plain nats-py pipelined publish of the same payloads on the same server.

    SAFETYMON_NATS_URL=nats://127.0.0.1:4222 python bench/ingest_throughput.py [--events N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import tempfile
import time
from pathlib import Path
from uuid import uuid4

import httpx
import nats
from pydantic import SecretStr

from kit.auth import bearer_headers
from services.ingest.config import Settings
from services.ingest.main import build_app
from tools.demo.generator import HISTORIC_START, generate_events

NATS_URL = os.environ.get("SAFETYMON_NATS_URL", "nats://127.0.0.1:4222")


async def _drop_streams(namespace: str) -> None:
    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    for stream in (f"{namespace.upper()}_FACTS", f"{namespace.upper()}_PLAIN"):
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(stream)
    await nc.close()


async def plain_publish(
    payloads: list[tuple[str, bytes, str]], namespace: str, window: int
) -> float:
    """Events/s of js.publish_async with `window` in flight, confirmed, same payload bytes."""
    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    stream = f"{namespace.upper()}_PLAIN"
    await js.add_stream(name=stream, subjects=[f"{namespace}.plain.>"], duplicate_window=3600)
    started = time.perf_counter()
    for start in range(0, len(payloads), window):
        futures = [
            await js.publish_async(
                f"{namespace}.plain.{subject}", data, headers={"Nats-Msg-Id": msg_id}
            )
            for subject, data, msg_id in payloads[start : start + window]
        ]
        await asyncio.gather(*futures)
    elapsed = time.perf_counter() - started
    await nc.close()
    return len(payloads) / elapsed


async def ingest_in_process(
    events: list[dict[str, object]], namespace: str, batch: int
) -> tuple[float, list[tuple[str, bytes, str]]]:
    """Events/s from submit() to the last PubAck; returns the published payloads too."""
    data_dir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    service = build_app(
        # No clock ticks: the log read back below must hold exactly the submitted events.
        Settings(data_dir=data_dir, nats_url=NATS_URL, namespace=namespace, clock_tick_seconds=0),
        http=False,
    )
    await service.start()
    started = time.perf_counter()
    for start in range(0, len(events), batch):
        outcomes = await service.submit(events[start : start + batch], actor="bench")
        assert all(o.status == "accepted" for o in outcomes), [
            o for o in outcomes if o.status != "accepted"
        ][:3]
    await service.drained(600)
    elapsed = time.perf_counter() - started
    entries = await service._log.read_after(0, len(events))
    await service.stop()
    payloads = [(e.event_type, e.wire(), str(e.event_id)) for e in entries]
    return len(events) / elapsed, payloads


async def ingest_over_http(events: list[dict[str, object]], namespace: str, batch: int) -> float:
    """Events/s through the HTTP API (batch events per request) to the last PubAck."""
    data_dir = Path(tempfile.mkdtemp(prefix="bench-ingest-http-"))
    token = secrets.token_urlsafe(32)  # a one-run admin token, like the demo's
    service = build_app(
        Settings(
            data_dir=data_dir,
            nats_url=NATS_URL,
            namespace=namespace,
            http_port=0,
            bootstrap_token=SecretStr(token),
            clock_tick_seconds=0,
        )
    )
    await service.start()
    started = time.perf_counter()
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{service.http_port}", timeout=300, headers=bearer_headers(token)
    ) as client:
        for start in range(0, len(events), batch):
            response = await client.post("/v1/events", json=events[start : start + batch])
            assert response.json()["accepted"] == len(events[start : start + batch])
    await service.drained(600)
    elapsed = time.perf_counter() - started
    await service.stop()
    return len(events) / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--window", type=int, default=500)
    args = parser.parse_args()
    events = list(generate_events(args.events, seed=7, start=HISTORIC_START))[: args.events]
    namespaces = [f"bench{uuid4().hex[:8]}" for _ in range(3)]
    try:
        ingest_rate, payloads = await ingest_in_process(events, namespaces[0], args.batch)
        plain_rate = await plain_publish(payloads, namespaces[1], args.window)
        http_rate = await ingest_over_http(events, namespaces[2], args.batch)
    finally:
        for namespace in namespaces:
            await _drop_streams(namespace)
    size = sum(len(p[1]) for p in payloads) / len(payloads)
    print(f"events: {len(events)}  mean payload: {size:.0f} B  server: {NATS_URL}")
    print(f"plain nats-py publish_async ({args.window} in flight): {plain_rate:10.0f} events/s")
    print(
        f"ingest in-process (validate+DuckDB+publish):      {ingest_rate:10.0f} events/s"
        f"  ({ingest_rate / plain_rate:.0%} of plain)"
    )
    print(
        f"ingest over HTTP ({args.batch}/request):               {http_rate:10.0f} events/s"
        f"  ({http_rate / plain_rate:.0%} of plain)"
    )


if __name__ == "__main__":
    asyncio.run(main())
