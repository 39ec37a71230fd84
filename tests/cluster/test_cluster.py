"""A three-node JetStream cluster on loopback (nats-server 2.15 from the venv), R3 streams.

Two rules workers share four partitions while one node is killed with SIGKILL mid-feed and
started again: every SAE still gives exactly one signal, and the streams stay R3.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from uuid import uuid4

import nats
import pytest
from nats.aio.client import Client as NatsClient

from kit.jetstream import ensure_stream
from schemas import DUPLICATE_WINDOW_SECONDS, SIGNAL_ADAPTER, ClinicalFact, SignalRaised, Subjects
from services.ingest.core.errors import TransientError
from services.rules.config import Settings
from services.rules.main import build_app
from tests.integration.test_rules_partitions import HOSPITALISED, Log, N
from tests.unit.rules.factories import ae_reported, enrolled, unique
from tools.cluster import LoopbackCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LoopbackCluster]:
    running = LoopbackCluster(tmp_path / "cluster")
    running.start()
    yield running
    running.stop()


@pytest.fixture
async def nc(cluster: LoopbackCluster) -> AsyncIterator[NatsClient]:
    client = await nats.connect(servers=cluster.urls, max_reconnect_attempts=-1)
    yield client
    await client.close()


async def until(what: str, check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await check():  # type: ignore[operator]
                return
        except (nats.errors.Error, TimeoutError):
            pass  # a node is down or a leader is being elected: ask again
        await asyncio.sleep(0.2)
    raise AssertionError(f"not reached within {timeout} s: {what}")


async def publish_retrying(log: Log, facts: Sequence[ClinicalFact]) -> None:
    """Publish as ingest's relay does: on failure, again with the same ids (deduplicated)."""
    entries = log.entries(facts)
    for _ in range(60):
        try:
            await log.publisher.publish(entries)
        except TransientError:
            await asyncio.sleep(0.5)
        else:
            return
    raise AssertionError("could not publish to the cluster")


async def signals(nc: NatsClient, namespace: str) -> list[SignalRaised]:
    js = nc.jetstream()
    stream = Subjects(namespace).signals_stream
    state = (await js.stream_info(stream)).state
    messages = [await js.get_msg(stream, s) for s in range(state.first_seq, state.last_seq + 1)]
    return [SIGNAL_ADAPTER.validate_json(m.data or b"") for m in messages]  # type: ignore[misc]


async def test_r3_cluster_loses_a_node_mid_feed_and_no_signal_is_lost_or_repeated(
    tmp_path: Path, cluster: LoopbackCluster, nc: NatsClient
) -> None:
    namespace = f"c{uuid4().hex[:10]}"
    subjects = Subjects(namespace)
    js = nc.jetstream()
    await until("a JetStream meta leader", js.account_info)
    await ensure_stream(
        js, name=subjects.facts_stream, subjects=subjects.facts_filter,
        duplicate_window=DUPLICATE_WINDOW_SECONDS, replicas=3,
    )  # fmt: skip
    workers = [
        build_app(
            Settings(
                data_dir=tmp_path / "rules", nats_url=cluster.url_list, namespace=namespace,
                partitions=N, rules_worker=worker, rules_workers=2, stream_replicas=3,
                rules_ownership_check_s=0.2, rules_ack_wait=5.0,
            )
        )
        for worker in (0, 1)
    ]  # fmt: skip
    for worker in workers:
        await worker.start()
    log = Log(js, namespace)
    pids = [unique("PC") for _ in range(60)]
    chunks = [pids[i : i + 10] for i in range(0, len(pids), 10)]
    for number, chunk in enumerate(chunks):
        if number == 2:
            cluster.kill_node(0)
        if number == 4:
            cluster.start_node(0)
        await publish_retrying(log, [f(pid) for pid in chunk for f in (enrolled, serious)])

    async def all_signals() -> bool:
        raised = await signals(nc, namespace)
        return sum(s.payload.rule_id == "SAE-01" for s in raised) >= len(pids)

    await until("a signal per SAE", all_signals, timeout=120)
    for worker in workers:
        await worker.stop()

    raised = await signals(nc, namespace)
    sae01 = Counter(s.participant_id for s in raised if s.payload.rule_id == "SAE-01")
    assert sae01 == Counter(pids)  # one SAE-01 each: none lost, none repeated
    assert len({s.event_id for s in raised}) == len(raised)  # no signal published twice
    for stream in (subjects.facts_stream, subjects.signals_stream):
        info = await js.stream_info(stream)
        assert info.config.num_replicas == 3
        assert info.cluster is not None
        assert len(info.cluster.replicas or []) == 2


def serious(pid: str) -> ClinicalFact:
    return ae_reported(pid, ae_ref="AE-1", criteria=HOSPITALISED)
