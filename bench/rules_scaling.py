"""Rules throughput with 1 and with 2 worker processes over the same partitioned feed.

    python bench/rules_scaling.py [--events 20000] [--partitions 2] [--workers 1,2]

One private nats-server (the venv's) for the whole run. For each worker count: a fresh
namespace and data dir, the workers started as `safetymon up --service rules --worker N`
processes and given time to settle who owns which partition, then the same demo feed
(wire bytes as ingest publishes them, on partitioned subjects) published at once, and the
time until every partition's durable has acknowledged everything. Prints facts/s per run,
the ratio, each worker's resident memory, and /proc/loadavg before and after each run (the
machine is shared: rerun when the load says another job was busy).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
from nats.js import JetStreamContext

from kit.jetstream import Outgoing, ensure_stream, publish_confirmed
from schemas import DUPLICATE_WINDOW_SECONDS, Subjects, canonical_bytes
from schemas.subjects import partition_of, rules_durable
from services.ingest.core.accept import Accepted, accept
from tools.demo.generator import HISTORIC_START, generate_events
from tools.embedded import EmbeddedNats

START = datetime(2024, 1, 1, tzinfo=UTC)
SETTLE_S = 4.0  # ownership looks every second; a worker missing twice is down


def loadavg() -> str:
    """The machine's /proc/loadavg (printed with every figure)."""
    return Path("/proc/loadavg").read_text().strip()


def feed(events: int, namespace: str, partitions: int) -> list[Outgoing]:
    """The demo feed as ingest's publisher sends it: partition subject, msg id, log seq."""
    subjects = Subjects(namespace)
    out: list[Outgoing] = []
    for index, item in enumerate(generate_events(events, start=HISTORIC_START)):
        outcome = accept(item, recorded_at=START + timedelta(seconds=index), actor="bench")
        if not isinstance(outcome, Accepted):
            continue
        wire = outcome.wire
        data = canonical_bytes(wire)[:-1] + f',"seq":{len(out) + 1}}}'.encode()
        k = partition_of(wire["trial_id"], wire["participant_id"], partitions)
        subject = subjects.partitioned_fact_subject(wire["event_type"], k, partitions)
        out.append(Outgoing(subject, data, str(wire["event_id"])))
    return out


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (0 when gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def drained(js: JetStreamContext, stream: str, durables: list[str]) -> None:
    """Return once no durable has anything undelivered or unacknowledged (after publishing)."""
    while True:
        infos = [await js.consumer_info(stream, durable) for durable in durables]
        if all(not i.num_pending and not i.num_ack_pending for i in infos):
            return
        await asyncio.sleep(0.05)


async def one_run(url: str, messages_of: int, *, workers: int, partitions: int) -> float:
    namespace = f"scale{workers}w{os.getpid()}"
    subjects = Subjects(namespace)
    messages = feed(messages_of, namespace, partitions)
    data = Path(tempfile.mkdtemp(prefix=f"bench-scale-{workers}w-"))
    env = {
        **os.environ, "SAFETYMON_NATS_URL": url, "SAFETYMON_NAMESPACE": namespace,
        "SAFETYMON_DATA_DIR": str(data), "SAFETYMON_PARTITIONS": str(partitions),
        "SAFETYMON_RULES_WORKERS": str(workers), "SAFETYMON_LOG_LEVEL": "WARNING",
        "SAFETYMON_LOG_FORMAT": "json",
    }  # fmt: skip
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_stream(js, name=subjects.facts_stream, subjects=subjects.facts_filter,
                        duplicate_window=DUPLICATE_WINDOW_SECONDS)  # fmt: skip
    argv = [sys.executable, "-m", "safetymon.cli", "up", "--service", "rules", "--worker"]
    procs = [
        subprocess.Popen([*argv, str(n)], env=env, stderr=(data / f"w{n}.err").open("wb"))
        for n in range(workers)
    ]
    durables = [rules_durable(k, partitions) for k in range(partitions)]
    try:
        while True:  # every partition's durable exists: its owner is consuming
            try:
                for durable in durables:
                    await js.consumer_info(subjects.facts_stream, durable)
                break
            except nats.js.errors.NotFoundError:
                await asyncio.sleep(0.2)
        await asyncio.sleep(SETTLE_S)
        before = loadavg()
        started = time.perf_counter()
        for at in range(0, len(messages), 1000):
            await publish_confirmed(js, messages[at : at + 1000], stream=subjects.facts_stream)
        published = time.perf_counter() - started
        await drained(js, subjects.facts_stream, durables)
        elapsed = time.perf_counter() - started
        memory = ", ".join(f"{rss_mb(p.pid):.0f} MB" for p in procs)
        rate = len(messages) / elapsed
        print(
            f"{workers} worker(s), {partitions} partitions: {len(messages)} facts in "
            f"{elapsed:.2f} s = {rate:,.0f} facts/s (published in {published:.2f} s); "
            f"RSS {memory}; loadavg before {before} after {loadavg()}",
            flush=True,
        )
        return rate
    finally:
        for process in procs:
            process.terminate()
        for process in procs:
            process.wait(30)
        await nc.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    # No fsync per write: this measures the rules' own cost, not the disk's (both runs alike).
    server = EmbeddedNats(Path(tempfile.mkdtemp(prefix="bench-scale-nats-")), sync_always=False)
    server.start()
    print(f"nats-server {server.url}; {os.cpu_count()} cores; loadavg {loadavg()}", flush=True)
    try:
        rates = {w: await one_run(server.url, args.events, workers=w, partitions=args.partitions)
                 for w in counts}  # fmt: skip
    finally:
        server.stop()
    if len(counts) >= 2:
        first, last = counts[0], counts[-1]
        print(f"ratio {last} vs {first} worker(s): {rates[last] / rates[first]:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
