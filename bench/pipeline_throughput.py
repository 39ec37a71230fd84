"""Pipeline throughput: HTTP accept and end to end, against a plain nats-py publish.

A private pipeline (the venv's nats-server, ingest, rules and notify as processes, a real
SMTP server that accepts everything). ~40,000 realistic facts of the demo feed (every fact
type, every site) go through `POST /v1/events` in batches of 2,000. In the same run, on the
same server, a plain nats-py pipelined publish of the same payloads (`--window` in flight)
gives the reference rate.

- accept: events/s until the last POST is answered (stored in ingest's log);
- end to end: events/s until ingest has relayed everything, the rules consumer has folded
  and acknowledged everything, and notify has nothing pending.

    python bench/pipeline_throughput.py [--events 40000] [--batch 2000] [--window 500]

`--code DIR` runs the services from another checkout (before/after figures in one sitting).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import time
from pathlib import Path

import httpx
import nats
from _pipeline import Pipeline, load
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tools.demo.generator import HISTORIC_START, generate_events
from tools.embedded import free_port

NAMESPACE = "safetymon"  # the services' default
FACTS, SIGNALS = "SAFETYMON_FACTS", "SAFETYMON_SIGNALS"


class Sink:
    """Accept every email."""

    accepted = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        Sink.accepted += 1
        return "250 2.0.0 Ok"


async def plain_publish(url: str, payloads: list[bytes], window: int) -> float:
    """Events/s of js.publish_async with `window` in flight, each confirmed."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="PLAIN", subjects=["plain.>"], duplicate_window=3600)
    started = time.perf_counter()
    for start in range(0, len(payloads), window):
        futures = [
            await js.publish_async(
                "plain.fact", data, headers={"Nats-Msg-Id": secrets.token_hex(16)}
            )
            for data in payloads[start : start + window]
        ]
        await asyncio.gather(*futures)
    elapsed = time.perf_counter() - started
    await js.delete_stream("PLAIN")
    await nc.close()
    return len(payloads) / elapsed


async def drained(url: str, expected: int) -> bool:
    """Ingest relayed `expected` facts; rules and notify have nothing pending."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        if (await js.stream_info(FACTS)).state.last_seq < expected:
            return False
        infos = [
            await js.consumer_info(stream, durable)
            for stream, durable in ((FACTS, "rules-evaluator"), (SIGNALS, "notify-router"))
        ]
    except nats.js.errors.NotFoundError:
        return False
    finally:
        await nc.close()
    return not any((i.num_pending or 0) + (i.num_ack_pending or 0) for i in infos)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--code", type=Path, default=None, help="run the services from here")
    parser.add_argument(
        "--lazy-fsync",
        action="store_true",
        help="a broker without sync_interval: always: the pipeline's own cost, not the disk's",
    )
    args = parser.parse_args()
    events = list(generate_events(args.events, seed=11, start=HISTORIC_START))[: args.events]
    payloads = [httpx.Request("POST", "/", json=e).content for e in events]
    smtp_port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    pipeline = Pipeline(args.code, smtp_port, sync_always=not args.lazy_fsync)
    pipeline.start()
    try:
        plain = await plain_publish(pipeline.nats.url, payloads, args.window)
        print(f"plain nats-py publish ({args.window} in flight): {plain:,.0f} events/s ({load()})")
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{pipeline.port}",
            headers={"Authorization": f"Bearer {pipeline.token}"},
            timeout=600,
        ) as client:
            await pipeline.wait_healthy(client)
            started = time.perf_counter()
            for start in range(0, len(events), args.batch):
                response = await client.post("/v1/events", json=events[start : start + args.batch])
                assert response.status_code in (200, 207), response.text[:300]
            accepted_in = time.perf_counter() - started
            accept = len(events) / accepted_in
            print(f"HTTP accept: {accept:,.0f} events/s = {accept / plain:.2f}x plain ({load()})")
            deadline = started + 1800
            while time.perf_counter() < deadline:
                if await drained(pipeline.nats.url, len(events)):
                    break
                await asyncio.sleep(0.2)
            end_to_end = len(events) / (time.perf_counter() - started)
            print(
                f"end to end (rules folded, notify drained): {end_to_end:,.0f} events/s"
                f" = {end_to_end / plain:.2f}x plain; {Sink.accepted} emails ({load()})"
            )
    finally:
        with contextlib.suppress(Exception):
            pipeline.stop()
        controller.stop()


if __name__ == "__main__":
    asyncio.run(main())
