"""Audit replay and verify at scale: 1,000,000 demo events as a chained log, then timed.

    python bench/replay_1m.py [--events 1000000] [--keep DIR] [--workers N] [--skip-replay]

The log is built the way production builds it: demo submissions go through ingest's
`accept` (validation, unit normalisation), ingest's DuckDB log adapter chains and appends
them, and ingest's own COPY writes event_log.parquet, the file an audit bundle holds.

Each measured phase runs in a fresh process, so its CPU time and peak RSS (getrusage,
its worker processes included) are its own; an idle process with the same imports is the
baseline. CPU seconds stay meaningful when other work shares the cores. Phases:
- bare DuckDB scan: one SELECT over every row of the Parquet file (content included);
- decode: Parquet batches -> the facts the rules decode (pydantic), no rules;
- verify: what `audit verify` runs on a clean log (every hash recomputed in one pass, the
  copied columns checked against the hashed content in one DuckDB query);
- verify by rows: the row-by-row verifier that locates and classifies a break (the path a
  tampered log takes);
- replay (cold): the full replay (`safetymon audit replay` without --as-of), rules included,
  from the first entry, writing verified checkpoints every 100,000 positions as
  `--checkpoints DIR` does (their cost included);
- replay (warm): the same full replay again with those checkpoints: it verifies the newest
  against the log's chain hash and folds only what follows it;
- as-of 95% (warm): a replay as of the time the entry at 95% of the log was recorded, with
  the checkpoints (it starts from the one at 900,000 and folds the rest up to its cut).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from services.audit.adapters._fast import event_log_verified
from services.audit.adapters.bundle_reader import read_chain_rows
from services.audit.adapters.log_reader import iter_facts
from services.audit.adapters.replayer import replay_log
from services.audit.adapters.settings_files import load_config
from services.audit.core.verify import verify_chain
from services.ingest.adapters.audit_export import copy_event_log
from services.ingest.adapters.duckdb_log import DuckDBEventLog
from services.ingest.core.accept import Accepted, accept
from tools.demo.generator import HISTORIC_START, generate_events

BATCH = 20_000
START = datetime(2024, 1, 1, tzinfo=UTC)


def _accepted(n: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for index, item in enumerate(generate_events(n, start=HISTORIC_START)):
        outcome = accept(item, recorded_at=START + timedelta(seconds=index), actor="bench")
        if isinstance(outcome, Accepted):
            batch.append(outcome.wire)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def build_log(directory: Path, n: int) -> Path:
    """ingest.duckdb with n chained events, exported as event_log.parquet (reused if present)."""
    target = directory / "event_log.parquet"
    if target.is_file() and pq.read_metadata(target).num_rows == n:
        print(f"reusing {target} ({n:,} rows)")
        return target
    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "ingest.duckdb"
    database.unlink(missing_ok=True)
    started = time.perf_counter()
    log = DuckDBEventLog(database)
    log.open()
    try:

        async def append_all() -> None:
            done = 0
            for batch in _accepted(n):
                await log.append(batch)
                done += len(batch)
                if done % 100_000 < BATCH:
                    print(f"  {done:,} events chained and appended", flush=True)

        asyncio.run(append_all())
    finally:
        log.close()
    con = duckdb.connect(str(database), read_only=True)
    try:
        target.unlink(missing_ok=True)
        copy_event_log(con, directory)
    finally:
        con.close()
    print(f"built {target} in {time.perf_counter() - started:.0f} s "
          f"({target.stat().st_size / 1e6:.0f} MB)")  # fmt: skip
    return target


def _rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024  # Linux reports KiB


def _idle(path: Path) -> int:
    del path
    return 0


def _bare_scan(path: Path) -> int:
    con = duckdb.connect()
    try:
        ((rows, *_),) = con.execute(
            "SELECT count(*), sum(length(content)), count(DISTINCT participant_id), max(seq),"
            " max(recorded_at), min(hash) FROM read_parquet(?)",
            [str(path)],
        ).fetchall()
    finally:
        con.close()
    return int(rows)


def _decode(path: Path) -> int:
    return sum(1 for _ in iter_facts(path))


def _verify_fast(path: Path) -> int:
    report = event_log_verified(path, "event_log", None)
    assert report is not None and report.ok
    return report.count


def _verify(path: Path) -> int:
    rows = read_chain_rows(path)
    report = verify_chain("event_log", rows)
    assert report.ok, report.problem
    return report.count


def _replay(
    path: Path, workers: int | None, checkpoints: Path | None, as_of: datetime | None = None
) -> int:
    result = replay_log(
        path, as_of=as_of, config=load_config(), workers=workers, checkpoints=checkpoints
    )
    starts = sorted({r.from_seq or 0 for r in result.resumptions})
    saved = sum(r.saved for r in result.resumptions)
    print(f"    {result.facts:,} facts, {len(result.participants):,} participants, "
          f"{len(result.signals):,} signals; folded from seq {starts}, "
          f"{saved} checkpoints written", flush=True)  # fmt: skip
    return result.facts


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _child(job: Callable[..., int], args: tuple[Any, ...], out: Any) -> None:  # noqa: ANN401
    started, cpu = time.perf_counter(), _cpu_s()
    rows = job(*args)
    out.send((rows, time.perf_counter() - started, _rss_mb(), _cpu_s() - cpu))


def measure(name: str, job: Callable[..., int], *args: Any) -> tuple[int, float, float]:  # noqa: ANN401
    """Run `job` in a fresh process: rows, seconds and peak RSS (MB, incl. its workers)."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(job, args, send))
    process.start()
    send.close()  # so a child that dies raises EOFError here instead of hanging
    try:
        rows, seconds, rss, cpu = receive.recv()
    finally:
        process.join()
    rate = rows / seconds if seconds else 0.0
    # CPU seconds (its workers included) stay meaningful when others share the cores.
    print(f"{name:<16} {rows:>10,} rows {seconds:>9.2f} s {rate:>12,.0f} rows/s "
          f"CPU {cpu:>8.1f} s peak RSS {rss:>7,.0f} MB", flush=True)  # fmt: skip
    return rows, seconds, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the log in this directory")
    parser.add_argument("--workers", type=int, default=None, help="replay processes (auto)")
    parser.add_argument("--skip-replay", action="store_true")
    parser.add_argument("--build-only", action="store_true", help="build (--keep) and stop")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as scratch:
        path = build_log(options.keep or Path(scratch), options.events)
        if options.build_only:
            return
        print(f"\n{options.events:,} events; each phase in a fresh process\n")
        measure("idle (imports)", _idle, path)
        _, scan_s, _ = measure("bare DuckDB scan", _bare_scan, path)
        measure("decode", _decode, path)
        _, fast_s, _ = measure("verify", _verify_fast, path)
        print(f"  verify / bare scan: {fast_s / scan_s:,.1f}x")
        _, verify_s, _ = measure("verify by rows", _verify, path)
        print(f"  row-by-row verify (what locates a break) / bare scan: {verify_s / scan_s:,.0f}x")
        if not options.skip_replay:
            store = Path(scratch) / "checkpoints"
            _, replay_s, _ = measure("replay (cold)", _replay, path, options.workers, store)
            print(f"  cold replay / bare scan: {replay_s / scan_s:,.0f}x "
                  f"(target: <= 10 s and <= 10x the scan)")  # fmt: skip
            files = list(store.rglob("*.ckpt"))
            size = sum(f.stat().st_size for f in files) / 1e6
            print(f"  checkpoints: {len(files)} files, {size:,.0f} MB (zstd)")
            _, warm_s, _ = measure("replay (warm)", _replay, path, options.workers, store)
            print(f"  warm replay / bare scan: {warm_s / scan_s:,.1f}x")
            cut = START + timedelta(seconds=int(options.events * 0.95))
            measure("as-of 95% (warm)", _replay, path, options.workers, store, cut)


if __name__ == "__main__":
    main()
