"""Rules service against the real NATS server: exactly-once signals across restarts and failures."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Collection, Sequence
from pathlib import Path
from uuid import UUID

import nats
import pyarrow.parquet as pq
import pytest
from nats.js import JetStreamContext

from kit.files import file_sha256
from kit.jetstream import ensure_stream
from schemas import (
    DUPLICATE_WINDOW_SECONDS,
    RULES_DURABLE,
    SIGNAL_ADAPTER,
    ClinicalFact,
    SeriousnessCriterion,
    SignalRaised,
    Subjects,
)
from services.rules.adapters.audit_export import CONFIG_HISTORY_FILE, snapshot_subject
from services.rules.adapters.duckdb_store import DuckDBRulesStore
from services.rules.adapters.trial_config import DEFAULT_TRIAL_CONFIG
from services.rules.config import Settings
from services.rules.core.engine import StateKey
from services.rules.core.errors import TransientError
from services.rules.core.fold import replay
from services.rules.core.state import ParticipantState
from services.rules.main import Deps, build_app
from services.rules.ports import (
    Commit,
    ConfigActivation,
    ConfigRecord,
    DeadLetter,
    OutboxRow,
    RulesStore,
)
from tests.unit.rules.factories import ae_reported, ae_updated, enrolled, unique

pytestmark = pytest.mark.integration

HOSPITALISED = (SeriousnessCriterion.HOSPITALISATION,)


@pytest.fixture
async def js(nats_url: str, namespace: str) -> AsyncIterator[JetStreamContext]:
    """A JetStream context with the facts stream in place (as ingest would have created it)."""
    nc = await nats.connect(nats_url)
    context = nc.jetstream()
    subjects = Subjects(namespace)
    await ensure_stream(
        context,
        name=subjects.facts_stream,
        subjects=subjects.facts_filter,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
    )
    yield context
    await nc.close()


def settings_for(tmp_path: Path, nats_url: str, namespace: str) -> Settings:
    # A short ack_wait bounds the wait for messages the kit's consumer had fetched but not
    # handed over when it stopped (they are redelivered after ack_wait; see the report).
    return Settings(
        data_dir=tmp_path,
        nats_url=nats_url,
        namespace=namespace,
        rules_batch=50,
        rules_ack_wait=5.0,
    )


async def publish(
    js: JetStreamContext, namespace: str, facts: Sequence[ClinicalFact], *, msg_id: bool = True
) -> None:
    subjects = Subjects(namespace)
    for fact in facts:
        headers = {"Nats-Msg-Id": str(fact.event_id)} if msg_id else None
        await js.publish(
            subjects.fact_subject(fact.event_type),  # type: ignore[attr-defined]
            fact.model_dump_json().encode(),
            stream=subjects.facts_stream,
            headers=headers,
        )


async def read_signals(js: JetStreamContext, namespace: str) -> list[SignalRaised]:
    stream = Subjects(namespace).signals_stream
    state = (await js.stream_info(stream)).state
    if not state.messages:
        return []
    messages = [await js.get_msg(stream, seq) for seq in range(state.first_seq, state.last_seq + 1)]
    return [SIGNAL_ADAPTER.validate_json(message.data or b"") for message in messages]  # type: ignore[misc]


async def wait_for_signals(
    js: JetStreamContext, namespace: str, count: int, timeout: float = 30.0
) -> None:
    stream = Subjects(namespace).signals_stream
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = await js.stream_info(stream)
        if info.state.messages >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} signals, got {info.state.messages}")


async def wait_drained(js: JetStreamContext, namespace: str, timeout: float = 30.0) -> None:
    """Wait until the rules consumer has acked everything in the facts stream."""
    stream = Subjects(namespace).facts_stream
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = await js.consumer_info(stream, RULES_DURABLE)
        if info.num_pending == 0 and info.num_ack_pending == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"consumer not drained: {info.num_pending} pending")


def keys(signals: Collection[SignalRaised]) -> Counter[tuple[str, str, object]]:
    return Counter(
        (s.payload.rule_id, s.participant_id, s.payload.values.get("ae_ref")) for s in signals
    )


async def test_one_sae_signal_despite_duplicates_and_poison(
    tmp_path: Path, nats_url: str, namespace: str, js: JetStreamContext
) -> None:
    """A serious AE gives exactly one SAE-01 signal; duplicates and poison change nothing."""
    pid = unique("P")
    report = ae_reported(pid, ae_ref="AE-1", criteria=HOSPITALISED)
    facts = [enrolled(pid), report, ae_updated(pid, ae_ref="AE-1", criteria=HOSPITALISED)]
    await publish(js, namespace, facts)
    await publish(js, namespace, [report])  # deduplicated by JetStream (same Nats-Msg-Id)
    await publish(js, namespace, [report], msg_id=False)  # stored again: tracking must skip it
    await js.publish(Subjects(namespace).fact_subject("adverse_event_reported"), b"not json")
    settings = settings_for(tmp_path, nats_url, namespace)
    service = build_app(settings)

    await service.start()
    await wait_for_signals(js, namespace, 1)
    await wait_drained(js, namespace)
    await service.stop()

    signals = await read_signals(js, namespace)
    assert [(s.payload.rule_id, s.causation_id) for s in signals] == [("SAE-01", report.event_id)]
    store = DuckDBRulesStore(settings.duckdb_path, signal_subject="unused")
    await store.open()
    letters = await store.dead_letters()
    await store.close()
    assert [(d.stage, d.body) for d in letters] == [("decode", b"not json")]


async def test_restart_mid_stream_loses_and_duplicates_nothing(
    tmp_path: Path, nats_url: str, namespace: str, js: JetStreamContext
) -> None:
    """200 participants' SAEs published while the service restarts: one signal per key."""
    participants = [unique("P") for _ in range(200)]
    facts = [
        fact
        for pid in participants
        for fact in (enrolled(pid), ae_reported(pid, ae_ref="AE-1", criteria=HOSPITALISED))
    ]
    settings = settings_for(tmp_path, nats_url, namespace)

    async def paced_publish() -> None:
        for start in range(0, len(facts), 20):
            await publish(js, namespace, facts[start : start + 20])
            await asyncio.sleep(0.05)

    first = build_app(settings)
    await first.start()
    publisher = asyncio.create_task(paced_publish())
    await wait_for_signals(js, namespace, 10)
    await first.stop()
    second = build_app(settings)
    await second.start()
    await publisher
    await wait_drained(js, namespace)
    await second.stop()

    signals = await read_signals(js, namespace)
    assert len(signals) == len(participants)
    assert set(keys(signals).values()) == {1}
    assert {s.participant_id for s in signals} == set(participants)


async def test_unpublished_outbox_rows_are_published_at_start(
    tmp_path: Path, nats_url: str, namespace: str, js: JetStreamContext
) -> None:
    """Signals a crash left committed but unpublished are published when the service starts."""
    settings = settings_for(tmp_path, nats_url, namespace)
    pid = unique("P")
    facts = [enrolled(pid), ae_reported(pid, criteria=HOSPITALISED)]
    states, signals = replay(facts)
    subject = Subjects(namespace).signal_subject("signal_raised")
    crashed = DuckDBRulesStore(settings.duckdb_path, signal_subject=subject)
    await crashed.open()
    await crashed.commit(
        Commit(
            consumer=RULES_DURABLE,
            tracking=tuple(f.event_id for f in facts),
            states=tuple(states.values()),
            signals=signals,
        )
    )
    await crashed.close()
    service = build_app(settings)

    await service.start()
    await wait_for_signals(js, namespace, 1)
    await service.stop()

    assert [s.event_id for s in await read_signals(js, namespace)] == [signals[0].event_id]


class FlakyStore:
    """Delegates to a real store but fails the first commit with a TransientError."""

    def __init__(self, inner: RulesStore) -> None:
        self.inner = inner
        self.commit_attempts = 0

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def processed(self, consumer: str, ids: Collection[UUID]) -> frozenset[UUID]:
        return await self.inner.processed(consumer, ids)

    async def load(self, keys: Collection[StateKey]) -> dict[StateKey, ParticipantState]:
        return await self.inner.load(keys)

    async def open_clocks(self, trial_id: str) -> frozenset[StateKey]:
        return await self.inner.open_clocks(trial_id)

    async def positions(self, keys: Collection[StateKey]) -> dict[StateKey, int]:
        return await self.inner.positions(keys)

    async def max_position(self) -> int | None:
        return await self.inner.max_position()

    async def commit(self, batch: Commit) -> None:
        self.commit_attempts += 1
        if self.commit_attempts == 1:
            raise TransientError("injected: storage unavailable")
        await self.inner.commit(batch)

    async def unpublished(self, *, limit: int) -> list[OutboxRow]:
        return await self.inner.unpublished(limit=limit)

    async def mark_published(self, signal_ids: Sequence[UUID]) -> None:
        await self.inner.mark_published(signal_ids)

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        return await self.inner.dead_letters(limit=limit)

    async def active_config(self) -> ConfigActivation | None:
        return await self.inner.active_config()

    async def config_history(self) -> list[ConfigRecord]:
        return await self.inner.config_history()


async def test_transient_failure_is_redelivered_and_signal_arrives(
    tmp_path: Path, nats_url: str, namespace: str, js: JetStreamContext
) -> None:
    """A batch whose commit fails is nak'd and redelivered by the server; one signal arrives."""
    settings = settings_for(tmp_path, nats_url, namespace)
    subject = Subjects(namespace).signal_subject("signal_raised")
    store = FlakyStore(DuckDBRulesStore(settings.duckdb_path, signal_subject=subject))
    pid = unique("P")
    report = ae_reported(pid, criteria=HOSPITALISED)
    await publish(js, namespace, [enrolled(pid), report])
    service = build_app(settings, Deps(store=store))

    await service.start()
    await wait_for_signals(js, namespace, 1)
    await wait_drained(js, namespace)
    await service.stop()

    assert store.commit_attempts >= 2
    signals = await read_signals(js, namespace)
    assert [(s.payload.rule_id, s.causation_id) for s in signals] == [("SAE-01", report.event_id)]


def at_seqs(start: int) -> list[ClinicalFact]:
    """An enrolment and a serious AE at log positions `start` and `start + 1`."""
    pid = unique("P")
    facts = [enrolled(pid), ae_reported(pid, criteria=HOSPITALISED)]
    return [fact.model_copy(update={"seq": start + i}) for i, fact in enumerate(facts)]


async def run_until_drained(settings: Settings, js: JetStreamContext, namespace: str) -> None:
    service = build_app(settings)
    await service.start()
    try:
        await wait_drained(js, namespace)
    finally:
        await service.stop()


async def test_a_restart_with_another_configuration_is_recorded_and_exported(
    tmp_path: Path, nats_url: str, namespace: str, js: JetStreamContext
) -> None:
    """v1 for seqs 1-4 (restarted once), v2 from seq 5: the snapshot names the switch there."""
    v1 = settings_for(tmp_path, nats_url, namespace)
    v2_file = DEFAULT_TRIAL_CONFIG.with_name("NCT01724398.v2.toml")
    v2 = v1.model_copy(update={"trial_config": v2_file})
    await publish(js, namespace, at_seqs(1))
    await run_until_drained(v1, js, namespace)
    await publish(js, namespace, at_seqs(3))
    await run_until_drained(v1, js, namespace)  # the same file again: nothing to record
    await publish(js, namespace, at_seqs(5))
    service = build_app(v2)
    await service.start()
    try:
        await wait_drained(js, namespace)
        out = tmp_path / "snapshot"
        nc = await nats.connect(nats_url)
        try:
            request = json.dumps({"directory": str(out)}).encode()
            message = await nc.request(snapshot_subject(namespace), request, timeout=10)
        finally:
            await nc.close()
    finally:
        await service.stop()

    reply = json.loads(message.data)
    report = reply["files"][CONFIG_HISTORY_FILE]
    rows = pq.read_table(out / CONFIG_HISTORY_FILE).to_pylist()
    assert [(r["from_seq"], r["config_version"]) for r in rows] == [
        (1, "NCT01724398.v1"),
        (5, "NCT01724398.v2"),
    ]
    assert [r["config_toml"].encode() for r in rows] == [
        DEFAULT_TRIAL_CONFIG.read_bytes(),
        v2_file.read_bytes(),
    ]
    assert json.loads(rows[1]["rule_versions"]) == {"VB-04": 2}
    assert report["rows"] == 2
    assert report["sha256"] == file_sha256(out / CONFIG_HISTORY_FILE)
    assert len(await read_signals(js, namespace)) == 3  # one SAE-01 per participant
