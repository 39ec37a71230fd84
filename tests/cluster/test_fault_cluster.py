"""The cluster fault run at a small size: nothing lost, nothing doubled, replay == live.

Three nats-servers (2.15, R3), four partitions, two rules workers; a node and the workers
are killed with SIGKILL (one of them while it takes over the other's partitions) and a
third worker is added, while the demo feed goes through the ingest API (bench/fault_cluster.py
is the full-size run).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.chaos import ChaosPlan
from tools.fault_cluster import ClusterChaosRun, summary

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


async def test_faults_on_a_partitioned_cluster_lose_and_double_nothing(tmp_path: Path) -> None:
    plan = ChaosPlan(seed=16, events=500, batch=20, settle_timeout=400.0)
    lines: list[str] = []
    run = ClusterChaosRun(plan, tmp_path, partitions=4, say=lines.append)

    result = await run.run()

    report = "\n".join([*lines, *summary(run, result.lines(), result.kills)])
    assert result.ok, report
    assert result.signals.expected > 0, report
    assert result.emails.expected > 0, report
    assert run.takeover_seen, report
    assert result.kills["rules-0"] >= 2 and result.kills["rules-1"] >= 1, report
    assert result.kills["rules-2"] == 1, report
    assert run.nats_restarts == 1, report
