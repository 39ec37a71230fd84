"""DSMB report on a 1,000,000-event log from the demo generator: how long does it take?

    python bench/report_1m.py [--events 1000000] [--cache data/bench] [--repeat 3]

Set-up (not timed into the figures): the demo generator's `generate_events(n)` goes through
ingest's own `accept` (validation, unit normalisation), hash chain and DuckDB append, and
ingest's audit snapshot writes `event_log.parquet`; the file is cached by event count and
reused. recorded_at follows the feed's clinical time, so the as-of cut (the last recorded
time) takes the whole log. Then, `--repeat` times: the DuckDB extract (all set-based SQL),
the pure table building and stopping rules, and writing HTML + CSV + Parquet, first straight
from the log's JSON ("cold"), then from the parsed projection of the snapshot, which the
first projected run writes and the scheduler and HTTP API keep between reports ("warm").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from services.ingest.adapters.duckdb_log import DuckDBEventLog
from services.ingest.core.accept import Rejection, accept
from services.report.adapters.duckdb_source import DuckDBLogSource
from services.report.adapters.writer import FileReportWriter
from services.report.core.build import build_report
from services.report.core.config import ReportConfig
from tools.demo.generator import HISTORIC_START, generate_events


async def _build_log(n: int, directory: Path) -> Path:
    log = DuckDBEventLog(directory / "ingest.duckdb")
    log.open()
    latest: datetime | None = None
    wires = []
    try:
        for item in generate_events(n, start=HISTORIC_START):
            occurred = datetime.fromisoformat(item["occurred_at"])
            latest = occurred if latest is None or occurred > latest else latest
            result = accept(item, recorded_at=latest + timedelta(hours=1), actor="bench")
            assert not isinstance(result, Rejection), result
            wires.append(result.wire)
            if len(wires) == 50_000:
                await log.append(wires)
                wires = []
        if wires:
            await log.append(wires)
        summary = await log.export_snapshot(directory)
    finally:
        log.close()
    (directory / "ingest.duckdb").unlink()
    return Path(summary["path"])


def event_log(n: int, cache: Path) -> Path:
    directory = cache / f"report_{n}"
    path = directory / "event_log.parquet"
    if path.is_file():
        print(f"using cached log {path}")
        return path
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    built = asyncio.run(_build_log(n, directory))
    print(f"set-up: built {n:,} events through ingest in {time.perf_counter() - started:.0f} s")
    return built


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--cache", type=Path, default=Path("data/bench"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    path = event_log(args.events, args.cache)
    meta = pq.read_metadata(path)
    table = pq.read_table(path, columns=["recorded_at", "participant_id"])
    as_of = max(table.column("recorded_at").to_pylist())
    participants = len(set(table.column("participant_id").to_pylist()))
    print(f"log: {meta.num_rows:,} events, {participants} participants, "
          f"{path.stat().st_size / 1e6:.0f} MB Parquet; as-of {as_of.isoformat()}")  # fmt: skip

    config = ReportConfig()
    projection = Path(tempfile.mkdtemp(prefix="bench-projection-"))
    started = time.perf_counter()
    DuckDBLogSource(path, projection=projection).extract(as_of, config)
    print(f"projection written (first projected report, extract included): "
          f"{time.perf_counter() - started:.2f} s")  # fmt: skip
    for mode, source in (("cold", DuckDBLogSource(path)),
                         ("warm", DuckDBLogSource(path, projection=projection))):  # fmt: skip
        figures: dict[str, list[float]] = {"extract": [], "build": [], "write": [], "total": []}
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="bench-report-") as out:
                t0 = time.perf_counter()
                extract = source.extract(as_of, config)
                t1 = time.perf_counter()
                report = build_report(extract, config)
                t2 = time.perf_counter()
                files = FileReportWriter().write(report, Path(out), generated_at=as_of)
                t3 = time.perf_counter()
            for key, value in (("extract", t1 - t0), ("build", t2 - t1), ("write", t3 - t2),
                               ("total", t3 - t0)):  # fmt: skip
                figures[key].append(value)
        print(f"-- {mode}:")
        for key, values in figures.items():
            print(f"{key:>8}: median {statistics.median(values):6.2f} s   "
                  f"min {min(values):6.2f} s   ({args.repeat} runs)")  # fmt: skip
    triggered = [f"{s.rule}/{s.arm}" for s in report.stops if s.triggered]
    rows = sum(len(t.rows) for t in report.tables)
    print(f"report: position {report.position.seq:,}, {len(files)} files, {rows:,} table rows")
    print(f"stops triggered: {triggered}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The machine is shared: the load average says how much of its 2 cores the figures had.
    print(f"peak RSS {peak:.0f} MB; cores {os.cpu_count()}; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
