"""`safetymon demo`: the demo trial feed through the real services, and what came out."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from typing import Any

import httpx
import nats
from rich.console import Console
from rich.table import Table

from safetymon.runner import Stack, start_stack
from schemas import SIGNAL_ADAPTER, Subjects


async def run_demo(*, participants: int, seed: int, keep_running: bool, console: Console) -> None:
    """Start the stack, post the feed over HTTP, wait until settled, print the outcome."""
    from safetymon.demo.generator import generate_feed, summarise

    http_port = int(os.environ["SAFETYMON_HTTP_PORT"]) if "SAFETYMON_HTTP_PORT" in os.environ else 0
    feed = generate_feed(seed=seed, participants=participants)
    console.print(f"[bold]Demo feed[/]: {len(feed)} events for {participants} participants")
    console.print_json(json.dumps(summarise(feed), default=str))
    stack = await start_stack(http_port=http_port)
    try:
        started = time.perf_counter()
        counts = await _post(feed, port=stack.http_port or 0)
        console.print(f"ingest: {counts} in {time.perf_counter() - started:.1f} s")
        await stack.settled(timeout=600)
        console.print(f"pipeline settled after {time.perf_counter() - started:.1f} s")
        await _report(stack, console)
        if keep_running:
            console.print(f"services running; ingest API on port {stack.http_port}. Ctrl-C stops.")
            await asyncio.Event().wait()
    finally:
        await stack.stop()


async def _post(feed: list[dict[str, Any]], *, port: int, batch: int = 1000) -> Counter[str]:
    counts: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        for start in range(0, len(feed), batch):
            response = await client.post("/v1/events", json=feed[start : start + batch])
            for result in response.json()["results"]:
                counts[result["status"]] += 1
    return counts


async def _signals(stack: Stack) -> list[Any]:
    nc = await nats.connect(stack.nats_url)
    js = nc.jetstream()
    stream = Subjects(stack.namespace).signals_stream
    total = (await js.stream_info(stream)).state.messages
    signals: list[Any] = []
    if total:
        sub = await js.pull_subscribe("", stream=stream)  # ephemeral: reads, acks nothing durable
        while len(signals) < total:
            for msg in await sub.fetch(min(500, total - len(signals)), timeout=5):
                signals.append(SIGNAL_ADAPTER.validate_json(msg.data))
                await msg.ack()
        await sub.unsubscribe()
    await nc.close()
    return signals


async def _report(stack: Stack, console: Console) -> None:
    signals = await _signals(stack)
    table = Table(title=f"Signals raised ({len(signals)})")
    for column in ("rule", "urgency", "count", "participants"):
        table.add_column(column)
    by_rule: dict[tuple[str, str], list[str]] = {}
    for signal in signals:
        key = (signal.payload.rule_id, signal.payload.urgency.value)
        by_rule.setdefault(key, []).append(signal.participant_id)
    for (rule, urgency), people in sorted(by_rule.items()):
        shown = ", ".join(sorted(set(people))[:6]) + (" ..." if len(set(people)) > 6 else "")
        table.add_row(rule, urgency, str(len(people)), shown)
    console.print(table)
    notify = stack.services["notify"]
    rows = await notify.notifications()  # type: ignore[attr-defined]
    statuses = Counter(row["status"] for row in rows)
    recipients = Counter(row["address"] for row in rows)
    mail = Table(title=f"Emails ({sum(statuses.values())}: {dict(statuses)})")
    mail.add_column("recipient")
    mail.add_column("emails")
    for address, count in sorted(recipients.items()):
        mail.add_row(address, str(count))
    console.print(mail)
    where = stack.mail_dir or f"SMTP server {stack.smtp}"
    console.print(f"Emails are in [bold]{where}[/]; audit trail in {stack.data_dir}/notify.duckdb")
