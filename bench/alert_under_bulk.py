"""Alert under bulk: does a safety alert wait behind another participant's data?

A private pipeline: a private nats-server (the venv's, JetStream with `sync_interval:
always`), ingest, rules and notify each as its own `safetymon up --service X` process, and
a real aiosmtpd server that timestamps the safety officer's email when it accepts DATA.
40 participants are enrolled at S01 and 100 at S02, then:

- idle phase: 20 SAEs at S01, one every 0.5 s;
- bulk phase: 30,000 lab results for the S02 participants posted in batches of 1,500 as fast
  as the API takes them (`--bulk aes`: 20,000 grade-1 AEs for one S02 participant), while 20
  more SAEs at S01 are posted one every 0.75 s.

Latency is from the POST's answer to the SMTP server accepting the safety officer's email.
Prints p50/p99/max per phase, their ratio, the slowest `/health` answer during the bulk
phase, and the machine's load with each figure. Every email must arrive.

    python bench/alert_under_bulk.py [--bulk labs|aes] [--size N]

`--cluster` runs it on a three-node JetStream cluster (the venv's 2.15, R3 streams,
`sync_interval: always`) with `--partitions` partitions and `--workers` rules worker
processes (`safetymon up --service rules` supervising them). The services connect to one
node (notify's broker takes a single URL; the fault run covers losing a node).

`--code DIR` runs the services from another checkout (e.g. a `git worktree` of an older
commit) with this venv, for before/after figures in one sitting.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _pipeline import Pipeline, load
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tools.embedded import free_port
from tools.fault_cluster import ClusterNats

SAFETY_OFFICER = "safety.officer@trial.example.org"  # tools/demo/routing.toml
TRIAL = "NCT01724398"


class Stamper:
    """When the safety officer's email naming each participant was accepted."""

    def __init__(self) -> None:
        self.accepted: dict[str, float] = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        now = time.perf_counter()
        if SAFETY_OFFICER in envelope.rcpt_tos:
            content = envelope.content or b""
            raw = content.encode() if isinstance(content, str) else content
            for match in re.finditer(rb"UB-S01-\d+", raw):
                with self.lock:
                    self.accepted.setdefault(match.group().decode(), now)
        return "250 2.0.0 Ok"


def _event(
    event_type: str, site: str, participant: str, ref: str, payload: dict[str, Any]
) -> dict[str, Any]:
    return {
        "event_type": event_type,
        "trial_id": TRIAL,
        "site_id": site,
        "participant_id": participant,
        "occurred_at": "2024-03-01T08:00:00Z",
        "source": "edc",
        "source_ref": ref,
        "payload": payload,
    }


def enrolment(site: str, participant: str) -> dict[str, Any]:
    return _event("participant_enrolled", site, participant, f"enrol-{participant}",
                  {"arm": "B", "baseline_meld": 22})  # fmt: skip


def sae(participant: str) -> dict[str, Any]:
    return _event("adverse_event_reported", "S01", participant, f"sae-{participant}", {
        "ae_ref": f"AE-{participant}",
        "term": "Oesophageal varices haemorrhage",
        "ctcae_grade": 3,
        "seriousness_criteria": ["hospitalisation"],
        "awareness_at": "2024-03-01T09:00:00Z",
    })  # fmt: skip


def lab(participant: str, n: int) -> dict[str, Any]:
    ev = _event("lab_result_recorded", "S02", participant, f"lab-{participant}-{n}", {
        "loinc": "1975-2", "result": {"value": 0.8 + (n % 7) / 10, "unit": "mg/dL"},
    })  # fmt: skip
    ev["source"] = "lab"
    ev["occurred_at"] = f"2024-03-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z"
    return ev


def mild_ae(participant: str, n: int) -> dict[str, Any]:
    return _event("adverse_event_reported", "S02", participant, f"ae-{participant}-{n}", {
        "ae_ref": f"AE-{n}", "term": "Headache", "ctcae_grade": 1, "seriousness_criteria": [],
        "awareness_at": "2024-03-01T09:00:00Z",
    })  # fmt: skip


def quantiles(latencies: list[float]) -> tuple[float, float, float]:
    values = sorted(latencies)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98], values[-1]


async def post_saes(
    client: httpx.AsyncClient, names: list[str], interval: float, sent: dict[str, float]
) -> None:
    next_at = time.perf_counter()
    for name in names:
        response = await client.post("/v1/events", json=sae(name))
        sent[name] = time.perf_counter()  # the POST's answer
        assert response.status_code == 200, response.text
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))


async def post_bulk(client: httpx.AsyncClient, events: list[dict[str, Any]], batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(events), batch):
        response = await client.post("/v1/events", json=events[start : start + batch], timeout=300)
        assert response.status_code == 200, response.text[:500]
    return len(events) / (time.perf_counter() - started)


async def probe_health(client: httpx.AsyncClient, until: asyncio.Event, worst: list[float]) -> None:
    while not until.is_set():
        started = time.perf_counter()
        await client.get("/health")
        worst.append(time.perf_counter() - started)
        await asyncio.sleep(0.2)


async def wait_emails(stamper: Stamper, names: list[str], timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if all(n in stamper.accepted for n in names):
            return
        await asyncio.sleep(0.05)


async def main() -> None:  # noqa: PLR0915 - one benchmark, read top to bottom
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bulk", choices=("labs", "aes"), default="labs")
    parser.add_argument("--size", type=int, default=None, help="bulk events (30,000 / 20,000)")
    parser.add_argument("--code", type=Path, default=None, help="run the services from here")
    parser.add_argument("--wait", type=float, default=900.0, help="seconds to wait for emails")
    parser.add_argument("--cluster", action="store_true", help="3-node R3 cluster")
    parser.add_argument("--workers", type=int, default=1, help="rules worker processes")
    parser.add_argument("--partitions", type=int, default=1, help="fact partitions")
    args = parser.parse_args()
    stamper = Stamper()
    smtp_port = free_port()
    controller = Controller(stamper, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    pipeline = Pipeline(args.code, smtp_port)
    os.environ.update(
        SAFETYMON_PARTITIONS=str(args.partitions), SAFETYMON_RULES_WORKERS=str(args.workers)
    )
    if args.cluster:
        os.environ["SAFETYMON_STREAM_REPLICAS"] = "3"
        pipeline.nats = ClusterNats(pipeline.data / "cluster")  # type: ignore[assignment]
    print(
        f"topology: {'3-node R3 cluster' if args.cluster else 'one nats-server'}, "
        f"{args.partitions} partition(s), {args.workers} rules worker(s)",
        flush=True,
    )
    pipeline.start()
    s01 = [f"UB-S01-{n:03d}" for n in range(40)]
    s02 = [f"UB-S02-{n:03d}" for n in range(100)]
    if args.bulk == "labs":
        size = args.size or 30_000
        bulk = [lab(s02[n % len(s02)], n) for n in range(size)]
    else:
        size = args.size or 20_000
        bulk = [mild_ae(s02[0], n) for n in range(size)]
    idle_sent: dict[str, float] = {}
    bulk_sent: dict[str, float] = {}
    health: list[float] = []
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{pipeline.port}",
            headers={"Authorization": f"Bearer {pipeline.token}"},
            timeout=120,
        ) as client:
            await pipeline.wait_healthy(client)
            enrol = [enrolment("S01", p) for p in s01] + [enrolment("S02", p) for p in s02]
            assert (await client.post("/v1/events", json=enrol)).status_code == 200
            await asyncio.sleep(2.0)
            print(f"idle phase: 20 SAEs, one every 0.5 s ({load()})", flush=True)
            await post_saes(client, s01[:20], 0.5, idle_sent)
            await wait_emails(stamper, s01[:20], 60)
            print(f"bulk phase: {size} {args.bulk} in batches of 1,500 + 20 SAEs every 0.75 s "
                  f"({load()})", flush=True)  # fmt: skip
            done = asyncio.Event()
            prober = asyncio.create_task(probe_health(client, done, health))
            started = time.perf_counter()
            accept_rate, _ = await asyncio.gather(
                post_bulk(client, bulk, 1_500), post_saes(client, s01[20:], 0.75, bulk_sent)
            )
            await wait_emails(stamper, s01[20:], args.wait)
            done.set()
            await prober
            elapsed = time.perf_counter() - started
    finally:
        pipeline.stop()
        controller.stop()
    print(f"bulk accepted at {accept_rate:,.0f} events/s; phase took {elapsed:.1f} s ({load()})")
    figures = {}
    for phase, sent in (("idle", idle_sent), ("bulk", bulk_sent)):
        latencies = [stamper.accepted[p] - t for p, t in sent.items() if p in stamper.accepted]
        missing = len(sent) - len(latencies)
        if len(latencies) < 2:
            print(f"{phase}: only {len(latencies)} of {len(sent)} emails arrived")
            continue
        p50, p99, worst = figures[phase] = quantiles(latencies)
        print(f"{phase:5} SAE -> SMTP 250 (s): p50 {p50:.3f}  p99 {p99:.3f}  max {worst:.3f}  "
              f"emails {len(latencies)}/{len(sent)}  missing {missing}")  # fmt: skip
    if "idle" in figures and "bulk" in figures:
        ratio = figures["bulk"][1] / figures["idle"][1]
        print(f"bulk p99 / idle p99 = {ratio:.1f}x  (target: bulk p99 <= 1 s and <= 3x idle)")
    if len(health) >= 2:
        cuts = statistics.quantiles(sorted(health), n=100, method="inclusive")
        print(
            f"/health during bulk (ms): p50 {cuts[49] * 1000:.0f}  p99 {cuts[98] * 1000:.0f}"
            f"  max {max(health) * 1000:.0f} over {len(health)} probes"
        )
    print(load())


if __name__ == "__main__":
    asyncio.run(main())
