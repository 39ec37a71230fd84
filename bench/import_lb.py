"""Import throughput of the full CDISC pilot LB domain (59,580 results) through ingest and NATS.

As a user runs it: `safetymon up --service ingest` in its own process against the NATS server,
and `safetymon ingest --format sdtm` (here its functions, in this process) reading the files,
mapping every record (pure) and POSTing batches; ingest validates, normalises units, appends
to DuckDB and publishes to JetStream. The clock stops when the stream holds every accepted
event (JetStream confirmed them all).

    SAFETYMON_NATS_URL=nats://127.0.0.1:4222 python bench/import_lb.py [--batch 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from uuid import uuid4

import httpx
import nats
from rich.console import Console

from safetymon.importers.run import run_import, sdtm_outcomes
from safetymon.ingest_files import ingest_client

NATS_URL = os.environ.get("SAFETYMON_NATS_URL", "nats://127.0.0.1:4222")
ROOT = Path(__file__).resolve().parents[1]
PILOT = ROOT.parent / "shared" / "data" / "cdiscpilot01"
MAPPING = ROOT / "safetymon" / "importers" / "mappings" / "cdiscpilot01.toml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_ingest(scratch: Path, namespace: str, token: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = os.environ | {
        "SAFETYMON_DATA_DIR": str(scratch / "data"), "SAFETYMON_NATS_URL": NATS_URL,
        "SAFETYMON_NAMESPACE": namespace, "SAFETYMON_HTTP_PORT": str(port),
        "SAFETYMON_BOOTSTRAP_TOKEN": token, "SAFETYMON_LOG_FORMAT": "json",
        "SAFETYMON_CLOCK_TICK_SECONDS": "0",  # the stream counts the import's facts only
    }  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "safetymon.cli", "up", "--service", "ingest"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        time.sleep(0.2)
    process.kill()
    raise SystemExit("ingest did not start within 60 s")


async def _wait_for_stream(namespace: str, count: int) -> None:
    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    stream = f"{namespace.upper()}_FACTS"
    while (await js.stream_info(stream)).state.messages < count:
        await asyncio.sleep(0.05)
    await nc.close()


async def _drop_stream(namespace: str) -> None:
    nc = await nats.connect(NATS_URL)
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await nc.jetstream().delete_stream(f"{namespace.upper()}_FACTS")
    await nc.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-import-lb-"))
    study = scratch / "study"
    study.mkdir()
    # DM gives every participant's site; LB is the pilot's full lab domain.
    (study / "dm.xpt").symlink_to(PILOT / "sdtm_original" / "dm.xpt")
    (study / "lb.csv.gz").symlink_to(PILOT / "pharmaversesdtm" / "lb.csv.gz")
    namespace, token = f"bench{uuid4().hex[:8]}", secrets.token_urlsafe(32)
    process, url = _start_ingest(scratch, namespace, token)
    try:
        started = time.perf_counter()
        outcomes, total = sdtm_outcomes([study], MAPPING)
        read = time.perf_counter() - started
        with ingest_client(url, token) as client:
            summary = run_import(
                outcomes, total=total, client=client, batch=args.batch,
                reasons=scratch / "reasons.jsonl", console=Console(stderr=True, quiet=True),
            )  # fmt: skip
        await _wait_for_stream(namespace, summary["accepted"])
        elapsed = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(30)
        await _drop_stream(namespace)
    lb_events = sum(c["accepted"] for t, c in summary["by_tag"].items() if t.startswith("LB:"))
    print(f"records read: {summary['read']} (DM {total - 59_580}, LB 59580)  server: {NATS_URL}")
    print(
        f"accepted: {summary['accepted']} (LB results {lb_events})  skipped: {summary['skipped']}"
        f"  rejected: {summary['rejected']}  batch: {args.batch}/request"
    )
    print(
        f"reading the files: {read:.1f} s; "
        f"all (read, map, HTTP, DuckDB, JetStream): {elapsed:.1f} s"
    )
    print(f"import throughput: {summary['accepted'] / elapsed:10.0f} events/s accepted")
    print(f"                   {summary['read'] / elapsed:10.0f} source records/s read")


if __name__ == "__main__":
    asyncio.run(main())
