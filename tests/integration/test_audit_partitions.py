"""Audit on a partitioned deployment: two rules workers, two partitions, one bundle.

`audit export` asks each partition's owner for its signals and configuration history and
merges them (a `partition` column; one signals chain per partition); `verify` walks each
chain, the replay of the bundle's log equals the live signals byte for byte, and
`reconcile` finds every email. A tampered row in one partition's chain is caught.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from safetymon.runner import Stack
from schemas import NOTIFY_DURABLE, Subjects
from schemas.subjects import rules_durable
from services.audit.adapters.export_offline import export_offline
from services.audit.adapters.export_online import export_online
from services.rules.config import Settings
from services.rules.main import build_app
from services.rules.service import RulesService
from tests.integration.audit_helpers import audit_live, post
from tools.demo.generator import HISTORIC_START, generate_events
from tools.stack import start_stack

pytestmark = pytest.mark.integration

N = 2


@pytest.fixture
async def partitioned(
    stack_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Stack, RulesService]]:
    """The stack with two partitions, and a second rules worker beside the stack's own."""
    monkeypatch.setenv("SAFETYMON_NOTIFY_HTTP_PORT", "0")
    monkeypatch.setenv("SAFETYMON_PARTITIONS", str(N))
    monkeypatch.setenv("SAFETYMON_RULES_OWNERSHIP_CHECK_S", "0.2")
    running = await start_stack(data_dir=stack_environment, http_port=0)
    second = build_app(Settings(data_dir=stack_environment, rules_worker=1))
    await second.start()
    yield running, second
    await second.stop()
    await running.stop()


async def settled(nats_url: str, namespace: str, timeout: float = 120.0) -> None:
    subjects = Subjects(namespace)
    checks = [(subjects.facts_stream, rules_durable(k, N)) for k in range(N)]
    checks.append((subjects.signals_stream, NOTIFY_DURABLE))
    nc = await nats.connect(nats_url)
    deadline, quiet = time.monotonic() + timeout, 0
    try:
        while time.monotonic() < deadline:
            infos = [await nc.jetstream().consumer_info(s, d) for s, d in checks]
            quiet = (
                quiet + 1 if all(not i.num_pending and not i.num_ack_pending for i in infos) else 0
            )
            if quiet >= 3:
                return
            await asyncio.sleep(0.3)
    finally:
        await nc.close()
    raise AssertionError("the partitioned pipeline did not settle")


async def cli(*args: str) -> tuple[int, dict[str, object], str]:
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "safetymon"), "audit", *args, "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, json.loads(out) if out.strip() else {}, err.decode()


async def test_export_gathers_every_partition_and_verify_replay_reconcile_pass(
    partitioned: tuple[Stack, RulesService], tmp_path: Path, nats_url: str, namespace: str
) -> None:
    stack, second = partitioned
    deadline = time.monotonic() + 20
    while not second.partitions and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await post(stack, list(generate_events(600, seed=11, start=HISTORIC_START)))
    await settled(nats_url, namespace)

    bundle = tmp_path / "bundle"
    await export_online(
        bundle, ingest_url=f"http://127.0.0.1:{stack.http_port}", nats_url=nats_url,
        namespace=namespace, partitions=N,
    )  # fmt: skip
    signals = pq.read_table(bundle / "signals.parquet")
    verified = await cli("verify", str(bundle))
    replayed = await audit_live(stack, nats_url, namespace, "replay")
    reconciled = await cli("reconcile", str(bundle), "--routing", str(tmp_path / "routing.toml"))

    assert second.partitions == (1,)
    assert set(signals.column("partition").to_pylist()) == {0, 1}
    assert verified[0] == 0, verified[2] or json.dumps(verified[1])[:3000]
    assert replayed[0] == 0, replayed[2] or json.dumps(replayed[1], default=str)[:3000]
    assert replayed[1]["live_signals"]["ok"] is True
    assert replayed[1]["live_signals"]["identical"] == signals.num_rows
    assert reconciled[0] == 0, reconciled[2] or json.dumps(reconciled[1])[:3000]

    # One partition's chain, tampered: verify names it.
    rows = signals.to_pylist()
    victim = next(i for i, r in enumerate(rows) if r["partition"] == 1)
    rows[victim]["body"] = rows[victim]["body"].replace('"U', '"X', 1)
    pq.write_table(pa.Table.from_pylist(rows, schema=signals.schema), bundle / "signals.parquet")
    tampered = await cli("verify", str(bundle))
    assert tampered[0] != 0
    assert "partition 1" in json.dumps(tampered[1])

    # Stopped, the same bundle's rules part comes from the partition files themselves.
    await second.stop()
    await stack.stop()
    offline = tmp_path / "offline"
    export_offline(stack.data_dir, offline)
    again = pq.read_table(offline / "signals.parquet")
    assert sorted(again.column("signal_id").to_pylist()) == sorted(
        signals.column("signal_id").to_pylist()
    )
    assert (await cli("verify", str(offline)))[0] == 0
