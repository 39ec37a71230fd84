"""Alert latency: an SAE posted over HTTP -> the SMTP server accepts the safety officer's email.

Runs the three services in this process against the real NATS server and a real aiosmtpd
server that timestamps each message when it accepts DATA. Prints p50/p90/p99/max.

    SAFETYMON_NATS_URL=nats://127.0.0.1:4222 python bench/alert_latency.py [--alerts N --rate R]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import statistics
import tempfile
import threading
import time
from pathlib import Path
from uuid import uuid4

import httpx
import nats
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from kit.auth import bearer_headers
from tools.embedded import free_port

NATS_URL = os.environ.get("SAFETYMON_NATS_URL", "nats://127.0.0.1:4222")
SAFETY_OFFICER = "safety.officer@trial.example.org"  # tools/demo/routing.toml


class Stamper:
    """Record when the safety officer's email for each participant was accepted."""

    def __init__(self) -> None:
        self.accepted: dict[str, float] = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        now = time.perf_counter()
        if SAFETY_OFFICER in envelope.rcpt_tos:
            match = re.search(rb"BENCH-[0-9a-f]{8}-\d+", envelope.content or b"")
            if match:
                with self.lock:
                    self.accepted.setdefault(match.group().decode(), now)
        return "250 2.0.0 Ok"


def _sae(participant: str) -> dict[str, object]:
    return {
        "event_type": "adverse_event_reported",
        "trial_id": "NCT01724398",
        "site_id": "S01",
        "participant_id": participant,
        "occurred_at": "2024-03-01T08:00:00Z",
        "source": "edc",
        "source_ref": f"bench-{participant}",
        "payload": {
            "ae_ref": f"AE-{participant}",
            "term": "Oesophageal varices haemorrhage",
            "ctcae_grade": 3,
            "seriousness_criteria": ["hospitalisation"],
            "awareness_at": "2024-03-01T09:00:00Z",
        },
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alerts", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0, help="SAEs per second")
    args = parser.parse_args()
    stamper = Stamper()
    smtp_port = free_port()
    controller = Controller(stamper, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    namespace = f"bench{uuid4().hex[:8]}"
    os.environ.update(
        SAFETYMON_NATS_URL=NATS_URL,
        SAFETYMON_NAMESPACE=namespace,
        SAFETYMON_SMTP_HOST="127.0.0.1",
        SAFETYMON_SMTP_PORT=str(smtp_port),
        # SAE-01's latency is measured: a tick's SAE-02 overdue email would be a later one.
        SAFETYMON_CLOCK_TICK_SECONDS="0",
    )
    from kit.logging import configure_logging
    from tools.stack import start_stack

    configure_logging(
        os.environ.get("BENCH_LOG_FORMAT", "console"),  # type: ignore[arg-type] # checked by structlog
        level=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    )
    token = secrets.token_urlsafe(32)  # a one-run admin token, like the demo's
    stack = await start_stack(
        data_dir=Path(tempfile.mkdtemp(prefix="bench-latency-")), http_port=0, bootstrap_token=token
    )
    run = uuid4().hex[:8]
    sent: dict[str, float] = {}
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{stack.http_port}", headers=bearer_headers(token)
        ) as client:
            await client.post("/v1/events", json=_sae(f"BENCH-{run}-warmup"))
            await asyncio.sleep(1.0)
            interval = 1.0 / args.rate
            next_at = time.perf_counter()
            for n in range(args.alerts):
                participant = f"BENCH-{run}-{n}"
                sent[participant] = time.perf_counter()
                response = await client.post("/v1/events", json=_sae(participant))
                assert response.status_code == 200, response.text
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        deadline = time.perf_counter() + 30
        while (
            len([p for p in sent if p in stamper.accepted]) < len(sent)
            and time.perf_counter() < deadline
        ):
            await asyncio.sleep(0.05)
    finally:
        await stack.stop()
        controller.stop()
        nc = await nats.connect(NATS_URL)
        for suffix in ("FACTS", "SIGNALS", "REPORTS"):  # notify creates REPORTS too
            stream = f"{namespace.upper()}_{suffix}"
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await nc.jetstream().delete_stream(stream)
        await nc.close()
    latencies = sorted(
        (stamper.accepted[p] - t) * 1000 for p, t in sent.items() if p in stamper.accepted
    )
    missing = len(sent) - len(latencies)
    if len(latencies) < 2:
        raise SystemExit(f"only {len(latencies)} of {len(sent)} alerts arrived: nothing to measure")
    quantiles = statistics.quantiles(latencies, n=100)
    print(f"alerts: {len(sent)} at {args.rate}/s  delivered: {len(latencies)}  missing: {missing}")
    print(
        f"HTTP SAE -> SMTP accepted (ms): p50 {quantiles[49]:.1f}  p90 {quantiles[89]:.1f}  "
        f"p99 {quantiles[98]:.1f}  max {latencies[-1]:.1f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
