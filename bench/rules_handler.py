"""The rules service's per-group path without the broker: decode, fold, commit (DuckDB).

    python bench/rules_handler.py [--events 20000] [--group 256] [--profile] [--top 30]

Builds demo facts as ingest accepts them, keeps their wire bytes, then drives the service's
own NATS handler (`build_handler`: decode with the log adapter, `app.handle_batch`, one
DuckDB transaction per group) over groups of `--group` deliveries in log order, against a
fresh rules.duckdb. Prints facts/s (wall and CPU) with the machine's load, and with
`--profile` the top functions of a cProfile run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kit.jetstream import Delivery
from schemas import canonical_bytes
from services.ingest.core.accept import Accepted, accept
from services.rules.adapters.duckdb_store import DuckDBRulesStore
from services.rules.adapters.nats_routes import build_handler
from services.rules.adapters.trial_config import DEFAULT_TRIAL_CONFIG, load_trial_source
from tools.demo.generator import HISTORIC_START, generate_events

START = datetime(2024, 1, 1, tzinfo=UTC)


class _Quiet:
    def debug(self, event: str, **kw: object) -> None: ...
    def info(self, event: str, **kw: object) -> None: ...
    def warning(self, event: str, **kw: object) -> None: ...
    def error(self, event: str, **kw: object) -> None: ...


def deliveries(n: int) -> list[Delivery]:
    out: list[Delivery] = []
    for index, item in enumerate(generate_events(n, start=HISTORIC_START)):
        outcome = accept(item, recorded_at=START + timedelta(seconds=index), actor="bench")
        if isinstance(outcome, Accepted):
            seq = len(out) + 1  # appended after the content, as ingest's chain does
            data = canonical_bytes(outcome.wire)[:-1] + f',"seq":{seq}}}'.encode()
            out.append(Delivery(data, "x", seq, 1))
    return out


async def run(items: list[Delivery], group: int) -> float:
    config, identity = load_trial_source(DEFAULT_TRIAL_CONFIG)
    store = DuckDBRulesStore(
        Path(tempfile.mkdtemp(prefix="bench-rules-")) / "rules.duckdb",
        signal_subject="bench.rules.signal_raised.v1",
    )
    await store.open()
    handler = build_handler(
        store=store, consumer="bench", log=_Quiet(), config=config, identity=identity
    )
    started = time.perf_counter()
    for start in range(0, len(items), group):
        await handler(items[start : start + group])
    elapsed = time.perf_counter() - started
    await store.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--group", type=int, default=256)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    options = parser.parse_args()
    items = deliveries(options.events)
    cpu = time.process_time()
    elapsed = asyncio.run(run(items, options.group))
    spent = time.process_time() - cpu
    one, five, _ = os.getloadavg()
    print(
        f"{len(items):,} facts in groups of {options.group}: {len(items) / elapsed:,.0f} facts/s"
        f" wall, {len(items) / spent:,.0f} facts/s CPU (load {one:.2f}/{five:.2f})"
    )
    if options.profile:
        profiler = cProfile.Profile()
        profiler.runcall(asyncio.run, run(items, options.group))
        pstats.Stats(profiler).strip_dirs().sort_stats("tottime").print_stats(options.top)


if __name__ == "__main__":
    main()
