"""The fault run on a 3-node cluster with partitioned rules workers (full size: 10,000 events).

Starts its own three nats-servers (the venv's 2.15, R3 streams, `sync_interval: always`) and
SMTP server, runs ingest, two rules workers and notify as processes, feeds the demo trial
through the ingest API while it kill -9s a NATS node, kills rules workers (one of them in the
middle of taking over another's partitions) and adds a third worker; then prints events,
signals and emails expected / delivered / duplicated / lost, and whether the replay of the
exported bundle equals the live signals. Exit 1 when anything was lost or doubled.

    .venv/bin/python bench/fault_cluster.py [--events 10000] [--partitions 4] [--seed N] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
from pathlib import Path

from tools.chaos import ChaosPlan
from tools.fault_cluster import ClusterChaosRun, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None, help="feed seed")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch", type=int, default=50, help="events per POST")
    parser.add_argument("--keep", action="store_true", help="keep the work dir after a pass")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    plan = ChaosPlan(seed=seed, events=args.events, batch=args.batch)
    work = Path(tempfile.mkdtemp(prefix=f"safetymon-fault-cluster-{seed}-"))
    print(f"fault run: seed={seed}; work dir {work}", flush=True)
    run = ClusterChaosRun(
        plan, work, partitions=args.partitions, say=lambda s: print(s, flush=True)
    )
    result = asyncio.run(run.run())
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")
    for line in summary(run, result.lines(), result.kills):
        print(line)
    print(f"replay equals live: {result.signals.problems == 0} "
          f"(expected {result.signals.expected}, raised {result.signals.raised})")  # fmt: skip
    print("PASS: nothing lost, nothing doubled" if result.ok else "FAIL")
    if result.ok and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"files kept in {work}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
