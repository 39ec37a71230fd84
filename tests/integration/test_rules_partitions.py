"""Partitioned facts and rules workers against the real NATS server (2.9: no 2.10 features).

Ingest's publisher puts each fact on its participant's partition subject and a clock tick on
every partition; two rules workers share four partitions, one stops, the other takes its
partitions over, it comes back and gets them back: every SAE gives one signal, and each
partition's file holds only its own participants.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import duckdb
import nats
import pytest
from nats.js import JetStreamContext

from kit.jetstream import ensure_stream
from schemas import (
    DUPLICATE_WINDOW_SECONDS,
    ClinicalFact,
    ClockTicked,
    SeriousnessCriterion,
    Subjects,
)
from schemas.subjects import partition_of, rules_durable
from services.ingest.adapters.nats_publisher import JetStreamPublisher
from services.ingest.core.chain import Entry, LogHead, chain
from services.rules.config import Settings
from services.rules.main import build_app
from tests.integration.test_rules_service import read_signals, wait_for_signals
from tests.unit.rules.factories import ae_reported, enrolled, unique

pytestmark = pytest.mark.integration

N = 4
HOSPITALISED = (SeriousnessCriterion.HOSPITALISATION,)


@pytest.fixture
async def js(nats_url: str, namespace: str) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_url)
    context = nc.jetstream()
    subjects = Subjects(namespace)
    await ensure_stream(
        context, name=subjects.facts_stream, subjects=subjects.facts_filter,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
    )  # fmt: skip
    yield context
    await nc.close()


class Log:
    """Chains facts as ingest's log does and publishes them through ingest's publisher."""

    def __init__(self, js: JetStreamContext, namespace: str) -> None:
        self.publisher = JetStreamPublisher(js, Subjects(namespace), partitions=N)
        self.head = LogHead(0, "0" * 64)

    def entries(self, facts: Sequence[ClinicalFact | ClockTicked]) -> list[Entry]:
        entries = chain([f.model_dump(mode="json") for f in facts], self.head)
        self.head = LogHead(entries[-1].seq, entries[-1].hash)
        return entries

    async def publish(self, facts: Sequence[ClinicalFact | ClockTicked]) -> list[Entry]:
        entries = self.entries(facts)
        await self.publisher.publish(entries)
        return entries


def tick(trial: str) -> ClockTicked:
    now = datetime.now(UTC)
    return ClockTicked(
        event_id=uuid4(), trial_id=trial, occurred_at=now, recorded_at=now,
        source="safetymon-clock", source_ref=f"tick:{trial}:{now.isoformat()}",
        actor="safetymon-ingest", payload={"period_seconds": 60},
    )  # fmt: skip


async def test_facts_go_to_their_partition_and_ticks_to_every_partition(
    namespace: str, js: JetStreamContext
) -> None:
    log = Log(js, namespace)
    pids = [unique("P") for _ in range(12)]
    facts = [enrolled(pid) for pid in pids]
    entries = await log.publish([*facts, tick(facts[0].trial_id)])
    await log.publisher.publish(entries)  # a republish after a crash: deduplicated

    stream = Subjects(namespace).facts_stream
    state = (await js.stream_info(stream)).state
    messages = [await js.get_msg(stream, seq) for seq in range(1, state.last_seq + 1)]
    subjects = Counter(m.subject for m in messages)
    partitions = (partition_of(f.trial_id, f.participant_id, N) for f in facts)
    expected = Counter(f"{namespace}.ingest.participant_enrolled.v1.p{k}" for k in partitions)
    expected.update(f"{namespace}.ingest.clock_ticked.v1.p{k}" for k in range(N))
    assert subjects == expected


def settings(tmp_path: Path, nats_url: str, namespace: str, worker: int) -> Settings:
    return Settings(
        data_dir=tmp_path, nats_url=nats_url, namespace=namespace, partitions=N,
        rules_worker=worker, rules_workers=2, rules_ownership_check_s=0.2, rules_ack_wait=5.0,
    )  # fmt: skip


async def eventually(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {what}")
        await asyncio.sleep(0.05)


async def test_two_workers_split_partitions_and_take_over_without_loss_or_repeat(
    tmp_path: Path, nats_url: str, namespace: str, js: JetStreamContext
) -> None:
    log = Log(js, namespace)
    first = build_app(settings(tmp_path, nats_url, namespace, 0))
    second = build_app(settings(tmp_path, nats_url, namespace, 1))
    await first.start()
    await second.start()
    await eventually(lambda: first.partitions == (0, 2) and second.partitions == (1, 3), "split")
    all_pids: list[str] = []

    async def saes(count: int) -> None:
        pids = [unique("P") for _ in range(count)]
        all_pids.extend(pids)
        await log.publish([f(pid) for pid in pids for f in (enrolled, serious)])

    await saes(20)
    await wait_for_signals(js, namespace, 20)
    await second.stop()  # its partitions are taken over by the first worker
    await eventually(lambda: first.partitions == (0, 1, 2, 3), "takeover")
    await saes(20)
    await wait_for_signals(js, namespace, 40)
    second = build_app(settings(tmp_path, nats_url, namespace, 1))
    await second.start()  # back: it gets its partitions back
    await eventually(lambda: first.partitions == (0, 2) and second.partitions == (1, 3), "back")
    await saes(20)
    await wait_for_signals(js, namespace, 60)
    await wait_all_acked(js, namespace)
    await first.stop()
    await second.stop()

    signals = await read_signals(js, namespace)
    sae01 = Counter(s.participant_id for s in signals if s.payload.rule_id == "SAE-01")
    assert sae01 == Counter(all_pids)  # one SAE-01 each: none lost, none repeated
    assert len({s.event_id for s in signals}) == len(signals)  # no signal published twice
    for partition in range(N):
        path = tmp_path / f"rules-p{partition}-of-{N}.duckdb"
        with duckdb.connect(str(path), read_only=True) as con:
            rows = con.execute("SELECT trial_id, participant_id FROM participant_state").fetchall()
        assert rows  # 60 participants over 4 partitions: none is empty
        assert {partition_of(t, p, N) for t, p in rows} == {partition}


def serious(pid: str) -> ClinicalFact:
    return ae_reported(pid, ae_ref="AE-1", criteria=HOSPITALISED)


async def wait_all_acked(js: JetStreamContext, namespace: str, timeout: float = 30.0) -> None:
    stream = Subjects(namespace).facts_stream
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        infos = [await js.consumer_info(stream, rules_durable(k, N)) for k in range(N)]
        if all(not i.num_pending and not i.num_ack_pending for i in infos):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("partition consumers not drained")
