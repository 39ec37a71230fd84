"""Whole audit bundles for the replay and reconcile tests, built from the services' own code.

The event log goes through ingest (`logs.write_log`); the live signals are what the rules
service's own batch handler raises over that log, committed to its DuckDB store and copied by
its snapshot COPY (`live_signals`); the notify audit trail is chained by notify's `link` and
written with the columns notify's snapshot COPY writes; the manifest is written by the
export's own `finish`, so `open_source` verifies these bundles like real ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from kit.files import file_sha256
from safetymon.audit._assemble import finish
from safetymon.audit._engine import load_config
from safetymon.audit.history import UndecodableFactError, iter_facts
from safetymon.audit.journal import write_journal
from safetymon.audit.manifest import AUDIT_TRAIL, EVENT_LOG, OUTBOX, SENT_JOURNAL
from schemas import GENESIS_HASH, RULES_DURABLE, Subjects
from services.notify.core.audit import AuditFact, ChainHead, link
from services.notify.ports import JournaledSend
from services.rules import app as rules_app
from services.rules.adapters.duckdb_store import DuckDBRulesStore
from tests.unit.audit.logs import write_log

_TRAIL_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("event_id", pa.string()),
        ("event_type", pa.string()),
        ("notification_id", pa.string()),
        ("signal_id", pa.string()),
        ("recorded_at", pa.timestamp("us", tz="UTC")),
        ("wire", pa.string()),
        ("prev_hash", pa.string()),
        ("hash", pa.string()),
    ]
)


def write_bundle(
    directory: Path,
    wires: Sequence[dict[str, Any]],
    trail: Sequence[AuditFact] = (),
    *,
    journal: Sequence[JournaledSend] | None = None,
) -> Path:
    """A complete, verifiable bundle: event log, live signals, notify trail, outbox, manifest.

    `journal` adds notify's sent journal, as an offline export of a killed notify does.
    """
    scratch = directory.parent / f"{directory.name}.work"
    log = write_log(scratch, wires)
    directory.mkdir(parents=True)
    (directory / EVENT_LOG).write_bytes(log.read_bytes())
    entries, head = link(ChainHead(), list(trail))
    table = pa.table(
        {
            "seq": [e.seq for e in entries],
            "event_id": [str(e.event_id) for e in entries],
            "event_type": [e.event_type for e in entries],
            "notification_id": [str(e.notification_id) for e in entries],
            "signal_id": [str(e.signal_id) for e in entries],
            "recorded_at": [e.recorded_at for e in entries],
            "wire": [e.wire for e in entries],
            "prev_hash": [e.prev_hash for e in entries],
            "hash": [e.hash for e in entries],
        },
        schema=_TRAIL_SCHEMA,
    )
    pq.write_table(table, directory / AUDIT_TRAIL)
    pq.write_table(pa.table({"notification_id": pa.array([], pa.string())}), directory / OUTBOX)
    log_rows = pq.read_metadata(directory / EVENT_LOG).num_rows
    last = pq.read_table(directory / EVENT_LOG, columns=["seq", "hash"]).to_pylist()
    reports = {
        EVENT_LOG: _report(directory / EVENT_LOG, log_rows, last[-1] if last else None),
        AUDIT_TRAIL: {
            **_report(directory / AUDIT_TRAIL, len(entries), None),
            "chain": {
                "first_seq": 1 if entries else None,
                "last_seq": head.seq or None,
                "head": head.hash,
            },
        },
        OUTBOX: {
            "path": str(directory / OUTBOX),
            "rows": 0,
            "sha256": file_sha256(directory / OUTBOX),
        },
    }
    reports.update(live_signals(directory / EVENT_LOG, directory, scratch=scratch))
    if journal is not None:
        reports[SENT_JOURNAL] = write_journal(journal, directory)
        reports[SENT_JOURNAL]["sha256"] = file_sha256(directory / SENT_JOURNAL)
    finish(directory, reports, source={"mode": "test"})
    return directory


def live_signals(log: Path, directory: Path, *, scratch: Path) -> dict[str, Any]:
    """Run the live rules over the log into a rules.duckdb, then its snapshot: signals.parquet.

    The facts go in as one batch (live batching does not change the signals, see
    test_replay_ticks). A log the schemas cannot read gives no signals: the replay of such a
    bundle stops before it compares anything.
    """
    try:
        facts = [logged.fact for logged in iter_facts(log)]
    except UndecodableFactError:
        facts = []
    subjects = Subjects("safetymon")
    store = DuckDBRulesStore(
        scratch / "rules.duckdb",
        signal_subject=subjects.signal_subject("signal_raised"),
        updated_subject=subjects.signal_subject("signal_updated"),
    )

    async def run() -> dict[str, Any]:
        await store.open()
        try:
            await rules_app.handle_batch(
                facts, consumer=RULES_DURABLE, store=store, config=load_config()
            )
            return await store.export_snapshot(directory)
        finally:
            await store.close()

    return asyncio.run(run())


def _report(path: Path, rows: int, last: dict[str, Any] | None) -> dict[str, Any]:
    chain = {
        "first_seq": 1 if last else None,
        "last_seq": last["seq"] if last else None,
        "head": last["hash"] if last else GENESIS_HASH,
    }
    return {"path": str(path), "rows": rows, "sha256": file_sha256(path), "chain": chain}
