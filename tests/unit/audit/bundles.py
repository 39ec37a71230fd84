"""Whole audit bundles for the replay and reconcile tests, built from the services' own code.

The event log goes through ingest (`logs.write_log`); the live signals and the configuration
history are what the rules service's own batch handler raises and records over that log,
committed to its DuckDB store and copied by its snapshot COPY (`live_signals`); the notify
audit trail is chained by notify's `link` and
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
from schemas import GENESIS_HASH, RULES_DURABLE, Subjects
from services.audit.adapters._assemble import finish
from services.audit.adapters.log_reader import iter_facts
from services.audit.adapters.parquet_trail import write_journal
from services.audit.adapters.settings_files import config_path
from services.audit.core.errors import UndecodableFactError
from services.audit.core.manifest import AUDIT_TRAIL, EVENT_LOG, OUTBOX, SENT_JOURNAL
from services.notify.core.audit import AuditFact, ChainHead, link
from services.notify.ports import JournaledSend
from services.rules import app as rules_app
from services.rules.adapters.duckdb_store import DuckDBRulesStore
from services.rules.adapters.trial_config import (
    DEFAULT_TRIAL_CONFIG,
    identity_of,
    parse_trial_config,
)
from services.rules.core.config import TrialConfig
from services.rules.ports import ConfigIdentity
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
    configs: Sequence[tuple[int, str]] | None = None,
) -> Path:
    """A complete, verifiable bundle: log, live signals, config history, notify trail, outbox.

    Args:
        directory: the bundle directory to create (a `<name>.work` sibling holds scratch).
        wires: the facts, as ingest accepts them.
        trail: notify audit facts to chain into the trail.
        journal: adds notify's sent journal, as an offline export of a killed notify does.
        configs: the rules service's configuration activations, `(from_seq, TOML text)` in
            ascending `from_seq`: the log's facts with `from_seq_i <= seq < from_seq_i+1` are
            evaluated, as one batch, by a rules store running the i-th text, as the live
            service does after a restart with another SAFETYMON_TRIAL_CONFIG; each records
            its activation at the smallest seq it evaluates (so a `from_seq` that no fact has
            is recorded at the next fact's seq, and a segment without facts records nothing).
            Facts before the first `from_seq` are evaluated under the replay's default file
            and record nothing, as a service from before the history was kept. None (the
            default): the replay's default file (`_engine.config_path()`) from seq 1.
            `packaged_toml("v2")` gives the text of a packaged version.
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
    reports.update(live_signals(directory / EVENT_LOG, directory, scratch=scratch, configs=configs))
    if journal is not None:
        reports[SENT_JOURNAL] = write_journal(journal, directory)
        reports[SENT_JOURNAL]["sha256"] = file_sha256(directory / SENT_JOURNAL)
    finish(directory, reports, source={"mode": "test"})
    return directory


def packaged_toml(version: str = "v1") -> str:
    """The text of a packaged trial configuration file, e.g. `packaged_toml("v2")`."""
    return DEFAULT_TRIAL_CONFIG.with_name(f"NCT01724398.{version}.toml").read_text(encoding="utf-8")


def live_signals(
    log: Path,
    directory: Path,
    *,
    scratch: Path,
    configs: Sequence[tuple[int, str]] | None = None,
) -> dict[str, Any]:
    """Run the live rules over the log into a rules.duckdb, then its snapshot.

    The snapshot is signals.parquet and rules_config_history.parquet. The facts under one
    configuration go in as one batch (live batching does not change the signals, see
    test_replay_ticks); `configs` is as in `write_bundle`. A log the schemas cannot read
    gives no signals: the replay of such a bundle stops before it compares anything.
    """
    try:
        logged = [(entry.seq, entry.fact) for entry in iter_facts(log)]
    except UndecodableFactError:
        logged = []
    subjects = Subjects("safetymon")
    store = DuckDBRulesStore(
        scratch / "rules.duckdb",
        signal_subject=subjects.signal_subject("signal_raised"),
        updated_subject=subjects.signal_subject("signal_updated"),
    )

    async def run() -> dict[str, Any]:
        await store.open()
        try:
            for config, identity, facts in _segments(logged, configs):
                await rules_app.handle_batch(
                    facts, consumer=RULES_DURABLE, store=store, config=config, identity=identity
                )
            return await store.export_snapshot(directory)
        finally:
            await store.close()

    return asyncio.run(run())


Segment = tuple[TrialConfig, ConfigIdentity | None, list[Any]]


def _segments(
    logged: list[tuple[int, Any]], configs: Sequence[tuple[int, str]] | None
) -> list[Segment]:
    """Split the log's facts by the configuration that evaluates them (non-empty only)."""
    default_text = config_path().read_text(encoding="utf-8")
    wanted = list(configs) if configs is not None else [(1, default_text)]
    starts = [start for start, _ in wanted]
    if starts != sorted(set(starts)):
        raise ValueError(f"configs must be in strictly ascending from_seq: {starts}")
    default = parse_trial_config(default_text)
    bounds = [(0, default, None), *((start, *_parsed(text)) for start, text in wanted)]
    segments: list[Segment] = []
    for index, (start, config, identity) in enumerate(bounds):
        end = bounds[index + 1][0] if index + 1 < len(bounds) else None
        facts = [f for seq, f in logged if seq >= start and (end is None or seq < end)]
        if facts:
            segments.append((config, identity, facts))
    return segments


def _parsed(text: str) -> tuple[TrialConfig, ConfigIdentity]:
    config = parse_trial_config(text)
    return config, identity_of(config, text)


def _report(path: Path, rows: int, last: dict[str, Any] | None) -> dict[str, Any]:
    chain = {
        "first_seq": 1 if last else None,
        "last_seq": last["seq"] if last else None,
        "head": last["hash"] if last else GENESIS_HASH,
    }
    return {"path": str(path), "rows": rows, "sha256": file_sha256(path), "chain": chain}
