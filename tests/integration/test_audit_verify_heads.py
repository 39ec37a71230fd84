"""`safetymon audit verify --heads-from-nats`: a re-chained bundle against the heads on NATS.

A re-chained log (one entry edited, every hash recomputed from there on) verifies on its own;
only the heads ingest published while it ran, read from a real NATS server now, show it.
"""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import nats
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from safetymon.audit_cli import audit_app
from services.ingest.adapters.head_anchor import JetStreamHeadAnchor
from services.ingest.core.chain import LogHead
from tests.conftest import delete_namespace_streams
from tests.factories import enrolment, lab, unique
from tests.unit.audit.bundles import write_bundle
from tests.unit.audit.logs import accepted_wires

pytestmark = pytest.mark.integration
DAY1 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def _submissions() -> list[tuple[dict[str, Any], datetime]]:
    pid = unique("P")
    items = [enrolment(participant_id=pid, site_id="S01")]
    items += [lab(participant_id=pid, site_id="S01") for _ in range(3)]
    return [(item, DAY1 + timedelta(hours=n)) for n, item in enumerate(items)]


def _rechained(submissions: list[tuple[dict[str, Any], datetime]]) -> list[dict[str, Any]]:
    """The same log with entry 2's value edited: every hash from entry 2 on differs."""
    edited = copy.deepcopy(submissions)
    edited[1][0]["payload"]["result"]["value"] = 0.1
    return accepted_wires(edited)


async def _publish_heads(nats_url: str, namespace: str, bundle: Path) -> None:
    """Publish the bundle's log heads as ingest would have while it ran."""
    table = pq.read_table(bundle / "event_log.parquet", columns=["seq", "hash"]).to_pylist()
    nc = await nats.connect(nats_url)
    try:
        anchor = JetStreamHeadAnchor(nc.jetstream(), namespace)
        await anchor.ensure()
        for row in table:
            await anchor.publish(LogHead(row["seq"], row["hash"]), datetime.now(UTC))
    finally:
        await nc.close()


def _verify(bundle: Path, *options: str) -> tuple[int, dict[str, Any] | str]:
    result = CliRunner().invoke(audit_app, ["verify", str(bundle), "--json", *options])
    try:
        return result.exit_code, json.loads(result.stdout)
    except ValueError:
        return result.exit_code, result.output


def test_a_rechained_bundle_fails_against_the_heads_published_on_nats(
    tmp_path: Path, nats_url: str
) -> None:
    namespace = f"t{uuid4().hex[:12]}"
    submissions = _submissions()
    original = write_bundle(tmp_path / "original", accepted_wires(submissions))
    asyncio.run(_publish_heads(nats_url, namespace, original))
    rechained = write_bundle(tmp_path / "rechained", _rechained(submissions))
    online = ("--heads-from-nats", "--nats-url", nats_url, "--namespace", namespace)
    try:
        offline_code, _ = _verify(rechained)
        intact_code, intact = _verify(original, *online)
        code, report = _verify(rechained, *online)
    finally:
        asyncio.run(delete_namespace_streams(nats_url, namespace))

    assert offline_code == 0  # on its own, the re-chained log verifies
    assert intact_code == 0, intact
    assert code == 1, report
    assert "rewritten and re-hashed" in json.dumps(report)


def test_no_nats_server_is_a_usage_error_not_a_pass(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b", accepted_wires(_submissions()))

    code, output = _verify(bundle, "--heads-from-nats", "--nats-url", "nats://127.0.0.1:9")

    assert code == 2
    assert "published heads" in str(output)


def test_a_namespace_without_heads_is_a_usage_error_not_a_pass(
    tmp_path: Path, nats_url: str
) -> None:
    bundle = write_bundle(tmp_path / "b", accepted_wires(_submissions()))
    empty = f"t{uuid4().hex[:12]}"
    options = ("--heads-from-nats", "--nats-url", nats_url, "--namespace", empty)

    code, output = _verify(bundle, *options)

    assert code == 2
    assert "no published heads" in str(output)
