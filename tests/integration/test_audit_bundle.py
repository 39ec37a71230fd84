"""An auditor's bundle from the running stack: export through the services, verify, tamper.

Real NATS, real SMTP server, real DuckDB files; the export goes through the owning services
(ingest over HTTP, rules and notify over NATS request/reply), never into their files.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import nats
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from kit.files import file_sha256
from safetymon.cli import app
from safetymon.runner import Stack
from services.audit.adapters.bundle_reader import read_manifest
from services.audit.adapters.export_offline import NOTIFY_JOURNAL_FILE, export_offline
from services.audit.core.manifest import (
    AUDIT_TRAIL,
    CONFIG_HISTORY,
    EVENT_LOG,
    INGEST_HEADS,
    MANIFEST_FILE,
    OUTBOX,
    SENT_JOURNAL,
    SIGNALS,
)
from services.notify.adapters.audit_export import snapshot_subject
from services.notify.adapters.sent_journal import read_entries
from services.rules.adapters import audit_export as rules_export
from tests.conftest import SmtpServer
from tests.credentials import AUTH
from tests.factories import EXPECTED_PER_SITE, enrolment, lab, sae, unique
from tools.stack import start_stack

pytestmark = pytest.mark.integration


async def _feed(stack: Stack, smtp_server: SmtpServer) -> int:
    """Post an enrolment, a lab result and an SAE; wait until every email is sent."""
    participant = unique("AUD")
    items = [
        enrolment(participant_id=participant, site_id="S01"),
        lab(participant_id=participant, site_id="S01"),
        sae(participant_id=participant, site_id="S01"),
    ]
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{stack.http_port}", headers=AUTH
    ) as client:
        response = await client.post("/v1/events", json=items)
    assert response.json()["accepted"] == len(items), response.text
    await smtp_server.recorder.wait_for(len(EXPECTED_PER_SITE["S01"]))
    await stack.settled(30)
    return len(items)


async def _cli(*args: str) -> Result:
    """Run the `safetymon` command in a thread, as a user would while the stack runs."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


async def _export(stack: Stack, out: Path, nats_url: str, namespace: str) -> Result:
    return await _cli(
        "audit", "export", "--out", str(out),
        "--ingest-url", f"http://127.0.0.1:{stack.http_port}",
        "--nats-url", nats_url, "--namespace", namespace,
    )  # fmt: skip


def _verify(bundle: Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, ["audit", "verify", str(bundle), "--json"])
    return result.exit_code, json.loads(result.stdout)


async def test_a_bundle_exported_through_the_services_verifies(
    stack: Stack, smtp_server: SmtpServer, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    """Auditors can export the logs and verify them offline: both chains OK, counts match."""
    posted = await _feed(stack, smtp_server)
    notify = stack.services["notify"]
    trail = await notify.verify_audit()  # type: ignore[attr-defined]
    outbox = await notify.notifications()  # type: ignore[attr-defined]
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{stack.http_port}", headers=AUTH
    ) as client:
        head = (await client.get("/v1/log/head")).json()

    exported = await _export(stack, tmp_path / "bundle", nats_url, namespace)
    code, report = _verify(tmp_path / "bundle")

    assert exported.exit_code == 0, exported.output
    assert sorted(p.name for p in (tmp_path / "bundle").iterdir()) == sorted(
        [EVENT_LOG, AUDIT_TRAIL, OUTBOX, SIGNALS, CONFIG_HISTORY, INGEST_HEADS, MANIFEST_FILE]
    )
    assert code == 0, report
    assert report["ok"] is True
    chains = {chain["name"]: chain for chain in report["chains"]}
    assert (chains["event_log"]["count"], chains["event_log"]["head"]) == (posted, head["hash"])
    assert (chains["notify_audit_trail"]["count"], chains["notify_audit_trail"]["head"]) == (
        trail.length,
        trail.head,
    )
    assert trail.length == 2 * len(outbox)  # each email: intended, then sent
    manifest = read_manifest(tmp_path / "bundle")
    assert manifest.files[OUTBOX].rows == len(outbox)
    assert manifest.files[EVENT_LOG].chain is not None
    assert manifest.files[EVENT_LOG].chain.last_seq == head["seq"]
    signals = pq.read_table(tmp_path / "bundle" / SIGNALS).to_pylist()
    assert manifest.files[SIGNALS].rows == len(signals) > 0
    # SAE-01 and VB-01 of one report, both U0: SAE-01 pages, VB-01 goes on the page's thread
    # (one page per person per fact); every notification concerns a live signal.
    assert sorted(row["rule_id"] for row in signals) == ["SAE-01", "VB-01"]
    assert {str(n["signal_id"]) for n in outbox} == {row["signal_id"] for row in signals}
    assert len([n for n in outbox if n["subject"].startswith("[U0 ")]) == len(outbox) // 2
    assert [row["outbox_seq"] for row in signals] == sorted(row["outbox_seq"] for row in signals)
    # The stack's rules service ran one configuration, recorded with its first batch.
    history = pq.read_table(tmp_path / "bundle" / CONFIG_HISTORY).to_pylist()
    assert manifest.files[CONFIG_HISTORY].rows == len(history) == 1
    assert history[0]["from_seq"] == 1
    assert history[0]["config_version"].startswith("NCT01724398.")


async def test_the_live_signals_of_an_exported_bundle_are_those_a_replay_gives(
    stack: Stack, smtp_server: SmtpServer, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    """The design's promise, checked on a real run: live and replayed signals, bit for bit."""
    await _feed(stack, smtp_server)
    await _export(stack, tmp_path / "bundle", nats_url, namespace)

    replay = await _cli("audit", "replay", str(tmp_path / "bundle"), "--json")

    assert replay.exit_code == 0, replay.output
    live = json.loads(replay.stdout)["live_signals"]
    assert live["ok"] is True, live["differences"]
    assert live["identical"] == live["replayed"] == live["live_in_range"] > 0


async def test_a_rewritten_row_with_a_fixed_file_digest_is_caught_by_the_chain(
    stack: Stack, smtp_server: SmtpServer, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    """Editing one entry and fixing the manifest's sha256 still fails: edited at that seq."""
    await _feed(stack, smtp_server)
    await _export(stack, tmp_path / "bundle", nats_url, namespace)
    tampered = tmp_path / "tampered"
    shutil.copytree(tmp_path / "bundle", tampered)

    _rewrite_content(tampered / EVENT_LOG, seq=2)
    _fix_digest(tampered, EVENT_LOG)
    code, report = _verify(tampered)
    human = CliRunner().invoke(app, ["audit", "verify", str(tampered)])

    assert code == 1
    assert report["ok"] is False
    assert all(check["ok"] for check in report["files"])  # only the chain can tell
    chains = {chain["name"]: chain for chain in report["chains"]}
    problem = chains["event_log"]["problem"]
    assert (problem["kind"], problem["seq"], chains["event_log"]["verified"]) == ("edited", 2, 1)
    assert chains["notify_audit_trail"]["ok"] is True
    assert human.exit_code == 1
    assert "BROKEN" in human.stdout
    assert "edited at seq 2" in human.stdout


async def test_a_file_changed_without_fixing_the_manifest_is_reported_by_its_digest(
    stack: Stack, smtp_server: SmtpServer, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    await _feed(stack, smtp_server)
    await _export(stack, tmp_path / "bundle", nats_url, namespace)

    _rewrite_content(tmp_path / "bundle" / EVENT_LOG, seq=1)
    code, report = _verify(tmp_path / "bundle")

    assert code == 1
    assert report["first_problem"].startswith(f"{EVENT_LOG}: sha256 differs")


async def test_the_services_refuse_bad_snapshot_requests(
    stack: Stack, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    """Notify writes only to an absolute, fresh directory; ingest serves only its snapshots."""
    nc = await nats.connect(nats_url)
    try:
        reply = await nc.request(
            snapshot_subject(namespace), b'{"directory": "relative"}', timeout=10
        )
    finally:
        await nc.close()
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{stack.http_port}", headers=AUTH
    ) as client:
        missing = await client.get("/v1/audit/snapshots/..%2F..%2Fingest.duckdb/event_log.parquet")
        other = await client.get("/v1/audit/snapshots/20240301T000000000000Z/ingest.duckdb")

    assert "absolute" in json.loads(reply.data)["error"]
    assert missing.status_code == 404
    assert other.status_code == 404


async def test_an_export_into_a_non_empty_directory_is_refused(
    stack: Stack, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "notes.txt").write_text("the auditor's own notes")

    result = await _export(stack, out, nats_url, namespace)

    assert result.exit_code == 1
    assert "not empty" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


async def test_the_offline_export_after_stopping_gives_the_same_chain_heads(
    stack_environment: Path, smtp_server: SmtpServer, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    running = await start_stack(data_dir=stack_environment, http_port=0)
    try:
        await _feed(running, smtp_server)
        online = await _export(running, tmp_path / "online", nats_url, namespace)
    finally:
        await running.stop()

    offline = export_offline(stack_environment, tmp_path / "offline")
    code, report = _verify(tmp_path / "offline")

    assert online.exit_code == 0, online.output
    assert code == 0, report
    before = read_manifest(tmp_path / "online").files
    for name in (EVENT_LOG, AUDIT_TRAIL, OUTBOX, SIGNALS, CONFIG_HISTORY):
        assert offline.files[name].rows == before[name].rows
        assert offline.files[name].chain == before[name].chain
    assert offline.source["mode"] == "offline"
    live = pq.read_table(tmp_path / "offline" / SIGNALS, columns=["signal_id", "body"])
    assert live == pq.read_table(tmp_path / "online" / SIGNALS, columns=["signal_id", "body"])
    history = pq.read_table(tmp_path / "offline" / CONFIG_HISTORY)
    assert history == pq.read_table(tmp_path / "online" / CONFIG_HISTORY)
    assert history.num_rows == 1
    # notify's sent journal comes along (compacted at a clean stop, so it may be empty).
    journal = read_entries(stack_environment / NOTIFY_JOURNAL_FILE)
    assert offline.files[SENT_JOURNAL].rows == len(journal)
    assert SENT_JOURNAL not in before
    replay = CliRunner().invoke(app, ["audit", "replay", str(tmp_path / "offline"), "--json"])
    assert replay.exit_code == 0, replay.output
    assert json.loads(replay.stdout)["live_signals"]["ok"] is True


async def test_the_rules_service_answers_snapshot_requests_outside_the_signals_stream(
    stack: Stack, smtp_server: SmtpServer, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    """Rules writes its own snapshot; the request is never stored as a signal."""
    await _feed(stack, smtp_server)
    subject = rules_export.snapshot_subject(namespace)
    where = stack.data_dir / "snapshot"  # only inside its data dir (kit/snapshots.py)
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        stored = (await js.stream_info(f"{namespace.upper()}_SIGNALS")).state.messages
        request = json.dumps({"directory": str(where)}).encode()
        good = json.loads((await nc.request(subject, request, timeout=10)).data)
        again = json.loads((await nc.request(subject, request, timeout=10)).data)
        relative = json.loads((await nc.request(subject, b'{"directory": "x"}', timeout=10)).data)
        after = (await js.stream_info(f"{namespace.upper()}_SIGNALS")).state.messages
    finally:
        await nc.close()

    report = good["files"][SIGNALS]
    assert (good["service"], good["directory"]) == ("rules", str(where))
    assert report["sha256"] == file_sha256(where / SIGNALS)
    assert report["rows"] == pq.read_metadata(where / SIGNALS).num_rows == stored > 0
    assert "nothing is overwritten" in again["error"]
    assert "absolute" in relative["error"]
    assert after == stored


def _rewrite_content(path: Path, *, seq: int) -> None:
    """Change one row's content (the participant code) with pyarrow, as a forger would."""
    table = pq.read_table(path)
    contents = table.column("content").to_pylist()
    row = table.column("seq").to_pylist().index(seq)
    document = json.loads(contents[row])
    document["participant_id"] = "P-FORGED"
    contents[row] = json.dumps(document, sort_keys=True, separators=(",", ":"))
    index = table.schema.get_field_index("content")
    table = table.set_column(index, "content", pa.array(contents, pa.string()))
    pq.write_table(table, path)


def _fix_digest(bundle: Path, name: str) -> None:
    """Recompute a file's sha256 in the manifest, so only the hash chain can catch the edit."""
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    manifest["files"][name]["sha256"] = file_sha256(bundle / name)
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest))
