"""`python -m tools demo`: the demo trial feed through the real services, and what came out."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections import Counter
from typing import Any

import httpx
import nats
from rich.console import Console
from rich.table import Table

from kit.auth import bearer_headers
from safetymon.runner import ALL_SERVICES, default_data_dir
from safetymon.supervised import SupervisedStack, start_supervised
from schemas import SIGNAL_ADAPTER, Subjects
from tools.demo_alerts import DutyOfficer, log_table
from tools.stack import on_embedded


async def run_demo(*, participants: int, seed: int, keep_running: bool, console: Console) -> None:
    """Start the stack, post the feed over HTTP, wait until settled, print the outcome."""
    from tools.demo.generator import generate_feed, summarise
    from tools.demo.now import demo_now

    http_port = int(os.environ["SAFETYMON_HTTP_PORT"]) if "SAFETYMON_HTTP_PORT" in os.environ else 0
    feed = generate_feed(seed=seed, participants=participants, now=demo_now())
    console.print(f"[bold]Demo feed[/]: {len(feed)} events for {participants} participants")
    console.print_json(json.dumps(summarise(feed), default=str))
    # A fresh admin token for this run only: the demo needs no configuration and leaves no
    # credential behind (the services accept it only while this process runs).
    token = secrets.token_urlsafe(32)
    # A short escalation delay, so that the demo shows one alert escalating (RULES.md: 60 min).
    os.environ.setdefault("SAFETYMON_ESCALATION_MINUTES", "0.5")
    os.environ.setdefault("SAFETYMON_ESCALATION_TICK_SECONDS", "2")
    # Clock ticks every few seconds rather than every minute, so the demo shows SAE-02's
    # overdue alerts (the feed's SAEs are long past their 24 h sponsor deadline).
    os.environ.setdefault("SAFETYMON_CLOCK_TICK_SECONDS", "5")
    tick_seconds = int(os.environ["SAFETYMON_CLOCK_TICK_SECONDS"])
    # The feed reports each SAE to the sponsor right after it, which closes its SAE-02 clock
    # before any tick: the demo holds those reports back until a tick has passed, as if
    # they had come in late.
    late = [e for e in feed if tick_seconds > 0 and e["event_type"] == "sae_reported_to_sponsor"]
    # The services run as child processes (safetymon/supervisor.py), as `safetymon up` runs
    # them; their warnings come through prefixed with [ingest], [rules] or [notify].
    child_env = {
        "SAFETYMON_LOG_FORMAT": os.environ.get("SAFETYMON_LOG_FORMAT", "console"),
        "SAFETYMON_LOG_LEVEL": os.environ.get("SAFETYMON_LOG_LEVEL", "WARNING"),
    }
    stack = await _start(http_port=http_port, token=token, child_env=child_env)
    try:
        await stack.wait_ready()
    except BaseException:
        await stack.stop()
        raise
    officer = DutyOfficer(stack.notify, stack.mail_dir, console)
    duty = asyncio.create_task(officer.run())
    try:
        started = time.perf_counter()
        on_time = (
            [e for e in feed if e["event_type"] != "sae_reported_to_sponsor"] if late else feed
        )
        counts = await _post(on_time, port=stack.http_port or 0, token=token)
        await stack.settled(timeout=600)
        if tick_seconds > 0:
            # The first tick after the feed raises the SAE-02 overdue alerts of the open
            # clocks (all overdue, so every clock then closes): wait for it, so what is shown
            # and counted below holds them, and no later tick adds an email. Two periods: a
            # tick whose append failed is retried at the next one.
            await asyncio.sleep(2 * tick_seconds + 1)
            await stack.settled(timeout=120)
        if late:
            counts += await _post(late, port=stack.http_port or 0, token=token)
            console.print(f"demo: {len(late)} SAE reports to the sponsor posted after a clock tick")
            await stack.settled(timeout=120)
        console.print(f"ingest: {counts} in {time.perf_counter() - started:.1f} s")
        console.print(f"pipeline settled after {time.perf_counter() - started:.1f} s")
        await _show_alerts(stack, officer, console)
        # U2 waits for the 08:00 digest; the demo sends the digests now to show them.
        held = await stack.notify.flush_digests()
        console.print(f"demo: sending the {held} U2 notifications held for the daily digest now")
        await stack.settled(timeout=120)
        await _report(stack, console)
        await _finish(stack, console, token=token, keep_running=keep_running)
    finally:
        officer.stop()
        await duty
        await stack.stop()


async def _start(*, http_port: int, token: str, child_env: dict[str, str]) -> SupervisedStack:
    """The services as child processes on embedded servers (unless the environment names some)."""
    data_dir = default_data_dir()
    return await on_embedded(
        data_dir,
        ALL_SERVICES,
        lambda infrastructure, stop_embedded: start_supervised(
            infrastructure,
            data_dir=data_dir,
            http_port=http_port,
            bootstrap_token=token,
            child_env=child_env,
            closers=(stop_embedded,),
        ),
    )


async def _finish(
    stack: SupervisedStack, console: Console, *, token: str, keep_running: bool
) -> None:
    """Say where the console is; with `keep_running`, serve until Ctrl-C."""
    if stack.console_url is not None:
        console.print(
            f"[bold]Open the console at {stack.console_url}/[/] (sign in with this run's admin "
            + ("token)" if keep_running else "token; add --keep-running to keep it up)")
        )
    if keep_running:
        console.print(f"services running; ingest API on port {stack.http_port}. Ctrl-C stops.")
        console.print(f"this run's admin token (SAFETYMON_TOKEN): {token}")
        await asyncio.Event().wait()


async def _post(
    feed: list[dict[str, Any]], *, port: int, token: str, batch: int = 1000
) -> Counter[str]:
    counts: Counter[str] = Counter()
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=120, headers=bearer_headers(token)
    ) as client:
        for start in range(0, len(feed), batch):
            response = await client.post("/v1/events", json=feed[start : start + batch])
            for result in response.json()["results"]:
                counts[result["status"]] += 1
    return counts


async def _signals(stack: SupervisedStack) -> list[Any]:
    nc = await nats.connect(stack.nats_url.split(","), **stack.client.nats_connect_options())
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


async def _report(stack: SupervisedStack, console: Console) -> None:
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
    rows = await stack.notify.notifications()
    # One email per notification, except a digest: one email for all rows of its key.
    emails = {row.get("digest_key") or row["notification_id"]: row for row in rows}
    statuses = Counter(row["status"] for row in emails.values())
    recipients = Counter(row["address"] for row in emails.values())
    mail = Table(title=f"Emails ({sum(statuses.values())}: {dict(statuses)})")
    mail.add_column("recipient")
    mail.add_column("emails")
    for address, count in sorted(recipients.items()):
        mail.add_row(address, str(count))
    console.print(mail)
    where = stack.mail_dir or f"SMTP server {stack.smtp}"
    console.print(f"Emails are in [bold]{where}[/]; audit trail in {stack.data_dir}/notify.duckdb")


async def _show_alerts(stack: SupervisedStack, officer: DutyOfficer, console: Console) -> None:
    """Wait for the escalation to reach the DSMB chair, then print both delivery logs."""
    notify = stack.notify
    console.print(f"demo duty officer acknowledged {officer.acknowledged} U0 alerts on arrival")
    if officer.escalating is not None:
        deadline = asyncio.get_running_loop().time() + 300
        while asyncio.get_running_loop().time() < deadline:
            log = await notify.delivery_log(signal_id=officer.escalating)
            if sum(e["event_type"] == "alert_escalated" for e in log) >= 2:  # both levels
                break
            await asyncio.sleep(1)
        await stack.settled(timeout=120)
        log = await notify.delivery_log(signal_id=officer.escalating)
        console.print(log_table(f"Escalated alert {officer.escalating}", log))
    if officer.by_link is not None:
        log = await notify.delivery_log(signal_id=officer.by_link)
        console.print(log_table(f"Alert acknowledged from its link {officer.by_link}", log))
        console.print(f"safetymon notifications --signal {officer.by_link}  # the same, by CLI")
