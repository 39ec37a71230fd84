"""The fault run on a partitioned, clustered deployment (the chaos harness, other faults).

Same harness as `tools.chaos` (feed through the ingest API, recording SMTP server, the
audit bundle's replay as the expectation, verify and reconcile), on another topology:
- a three-node JetStream cluster on loopback (`tools.cluster`), R3 streams,
  `sync_interval: always`; ingest and the rules workers are given all three URLs;
- the facts in `partitions` partitions, rules as worker processes `rules-0`, `rules-1`.

And other faults, at fixed points of the feed:
- kill -9 one NATS node, start it again after a few seconds;
- kill -9 a rules worker and restart it;
- kill -9 a worker, wait until another has started taking over its partitions (its log
  says `partition_claimed`), kill -9 that one mid-takeover, restart both;
- add a worker (`rules-2`): the partitions are dealt again over three;
- kill -9 the added worker and restart it.

Notify is given one node's URL: its broker takes a single URL (see the report); that node
is never the one killed, and neither is the one the harness itself reads from.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import httpx
import nats
import nats.errors
import nats.js.errors

from kit.jetstream import consumers_idle
from schemas import NOTIFY_DURABLE, Subjects
from schemas.subjects import rules_durable
from tools.chaos import CHAOS_ROUTING, ChaosError, ChaosPlan, ChaosResult, ChaosRun
from tools.cluster import LoopbackCluster

FaultKind = Literal["node", "kill", "takeover_kill", "add"]
_KILLED_NODE: Final = 0
_STEADY_NODE: Final = 1  # notify and the harness connect here


@dataclass(frozen=True, slots=True)
class ClusterFault:
    """One fault, fired once the feed has sent `after_batch` batches."""

    after_batch: int
    kind: FaultKind
    target: str
    down_seconds: float

    def describe(self) -> str:
        """E.g. 'kill -9 rules-1 for 1.0 s after batch 12'."""
        what = {
            "node": f"kill -9 NATS node {self.target}",
            "kill": f"kill -9 {self.target}",
            "takeover_kill": f"kill -9 {self.target}, then its taker mid-takeover,",
            "add": f"add worker {self.target}",
        }[self.kind]
        return f"{what} for {self.down_seconds:.1f} s after batch {self.after_batch}"


def cluster_faults(batches: int) -> tuple[ClusterFault, ...]:
    """The run's faults, spread over the feed."""

    def at(share: float) -> int:
        return max(0, min(batches - 1, int(batches * share)))

    return (
        ClusterFault(at(0.15), "node", str(_KILLED_NODE), 3.0),
        ClusterFault(at(0.30), "kill", "rules-0", 1.0),
        ClusterFault(at(0.45), "takeover_kill", "rules-1", 2.0),
        ClusterFault(at(0.60), "add", "rules-2", 0.0),
        ClusterFault(at(0.75), "kill", "rules-2", 1.0),
    )


class ClusterNats:
    """The cluster where ChaosRun expects its one server: `url` is the steady node's."""

    def __init__(self, base_dir: Path) -> None:
        self.cluster = LoopbackCluster(base_dir)
        self.url = self.cluster.nodes[_STEADY_NODE].url
        self.restarts = 0

    @property
    def url_list(self) -> str:
        """Every node, for the services that take several."""
        return self.cluster.url_list

    def start(self) -> None:
        """Start the three nodes."""
        self.cluster.start()

    def stop(self) -> None:
        """Stop every node."""
        self.cluster.stop()


class ClusterChaosRun(ChaosRun):
    """ChaosRun on a 3-node cluster with partitioned rules workers and the faults above."""

    def __init__(
        self,
        plan: ChaosPlan,
        work_dir: Path,
        *,
        partitions: int = 4,
        say: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(plan, work_dir, say=say)
        self.partitions = partitions
        self.cluster_nats = ClusterNats(work_dir / "cluster")
        self.nats = self.cluster_nats  # type: ignore[assignment]
        self.workers = ["rules-0", "rules-1"]
        self.cluster_faults = cluster_faults(plan.batches)
        self.faults = self.cluster_faults  # type: ignore[assignment]
        env = self.processes.env
        env.update(
            SAFETYMON_NATS_URL=self.cluster_nats.url_list,
            SAFETYMON_PARTITIONS=str(partitions),
            SAFETYMON_STREAM_REPLICAS="3",
            SAFETYMON_RULES_ACK_WAIT="5",
        )
        self.processes.extra_env["notify"] = {"SAFETYMON_NATS_URL": self.cluster_nats.url}
        for worker in ("rules-0", "rules-1", "rules-2"):
            self.processes.extra_env[worker] = {"SAFETYMON_RULES_WORKER": worker[-1]}
        self.takeover_seen = False

    @property
    def names(self) -> list[str]:
        """Every process of the deployment now."""
        return ["ingest", *self.workers, "notify"]

    async def run(self) -> ChaosResult:
        """Start the cluster and the processes, then the parent's feed, settle and count."""
        started = time.monotonic()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.routing.write_text(CHAOS_ROUTING, encoding="utf-8")
        for fault in self.cluster_faults:
            self.say(f"  planned: {fault.describe()}")
        await asyncio.to_thread(self.cluster_nats.start)
        self.smtp.start()
        try:
            for name in self.names:
                await self.processes.start(name)
            feed = await self._feed_under_faults()
            await self._all_up()
            return await self._settle_and_count(feed, started)
        finally:
            await asyncio.to_thread(self.processes.stop_all)
            self.smtp.stop()
            await asyncio.to_thread(self.cluster_nats.stop)

    async def _inject_faults(self) -> None:
        from functools import partial

        for fault in self.cluster_faults:
            async with self._changed:
                await self._changed.wait_for(partial(self._may_fire, fault))  # type: ignore[arg-type]
            await self._cluster_fault(fault)
            await self._advance(fired=1)

    async def _cluster_fault(self, fault: ClusterFault) -> None:
        self.say(f"  fault: {fault.describe()}")
        if fault.kind == "node":
            self.cluster_nats.cluster.kill_node(int(fault.target))
            await asyncio.sleep(fault.down_seconds)
            await asyncio.to_thread(self.cluster_nats.cluster.start_node, int(fault.target))
            self.nats_restarts += 1
        elif fault.kind == "kill":
            await self.processes.kill(fault.target)
            await asyncio.sleep(fault.down_seconds)
            await self.processes.start(fault.target)
        elif fault.kind == "takeover_kill":
            await self._kill_mid_takeover(fault)
        else:
            self.workers.append(fault.target)
            await self.processes.start(fault.target)

    async def _kill_mid_takeover(self, fault: ClusterFault) -> None:
        taker = "rules-0" if fault.target != "rules-0" else "rules-1"
        log = self.processes.log_path(taker)
        offset = log.stat().st_size
        await self.processes.kill(fault.target)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with log.open("rb") as handle:
                handle.seek(offset)
                if b'"partition_claimed"' in handle.read():
                    self.takeover_seen = True
                    break
            await asyncio.sleep(0.02)
        self.say(f"  {taker} claimed a partition of {fault.target}: {self.takeover_seen}")
        await self.processes.kill(taker)
        await asyncio.sleep(fault.down_seconds)
        await self.processes.start(taker)
        await self.processes.start(fault.target)

    async def _all_up(self) -> None:
        for name in self.names:
            if name not in self.processes.alive():
                self.say(f"  {name} was not running after the faults; starting it")
                self.died_unkilled.append(name)
                self.processes.running.pop(name, None)
                await self.processes.start(name)

    async def _wait_quiet(self, deadline: float) -> None:
        subjects = Subjects(self.namespace)
        checks = [(subjects.facts_stream, rules_durable(k, self.partitions))
                  for k in range(self.partitions)]  # fmt: skip
        checks.append((subjects.signals_stream, NOTIFY_DURABLE))
        headers = {"Authorization": f"Bearer {self.token}"}
        quiet_in_a_row = 0
        async with httpx.AsyncClient(base_url=self.ingest_url, headers=headers) as client:
            while time.monotonic() < deadline:
                try:
                    head = (await client.get("/v1/log/head", timeout=10)).json()
                    relayed = int(head.get("published", 0)) >= int(head["seq"])
                    quiet = relayed and await _consumers_quiet(self.cluster_nats.url, checks)
                except (httpx.HTTPError, nats.errors.Error, OSError, KeyError, ValueError):
                    quiet = False
                quiet_in_a_row = quiet_in_a_row + 1 if quiet else 0
                if quiet_in_a_row >= 2:
                    return
                await asyncio.sleep(1.0)
        raise ChaosError(f"the pipeline did not settle within {self.plan.settle_timeout} s")

    async def _export(self, name: str) -> Path:
        import os

        from services.audit.adapters.export_online import export_online

        out = self.work_dir / name
        previous = os.environ.get("SAFETYMON_TOKEN")
        os.environ["SAFETYMON_TOKEN"] = self.token
        try:
            await export_online(
                out, ingest_url=self.ingest_url, nats_url=self.cluster_nats.url,
                namespace=self.namespace, partitions=self.partitions,
            )  # fmt: skip
        finally:
            if previous is None:
                os.environ.pop("SAFETYMON_TOKEN", None)
            else:
                os.environ["SAFETYMON_TOKEN"] = previous
        return out


async def _consumers_quiet(url: str, checks: list[tuple[str, str]]) -> bool:
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        return await consumers_idle(nc.jetstream(), checks)
    finally:
        await nc.close()


def summary(run: ClusterChaosRun, lines: list[str], kills: Mapping[str, int]) -> list[str]:
    """The parent's summary plus what this topology adds."""
    per_process = ", ".join(f"{name} {count}" for name, count in sorted(kills.items()))
    return [
        *lines,
        f"cluster: 3 nodes, R3, node {_KILLED_NODE} killed and restarted "
        f"{run.nats_restarts}x; partitions {run.partitions}; workers {run.workers}; "
        f"kills per process: {per_process}; a takeover was under way at the second "
        f"kill: {run.takeover_seen}",
    ]
