"""Read an audit bundle from disk for `verify` (the I/O beside the pure verifier).

Parquet is read with pyarrow in this process; nothing is ever connected to a service, so a
bundle verifies on an auditor's own machine with no network.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import ValidationError

from kit.files import file_sha256
from services.audit.adapters._fast import event_log_verified
from services.audit.core import verify
from services.audit.core.errors import BundleError
from services.audit.core.heads import heads_problems, parse_heads
from services.audit.core.manifest import (
    ALL_FILES,
    AUDIT_TRAIL,
    CHAINS,
    EVENT_LOG,
    INGEST_HEADS,
    MANIFEST_FILE,
    SIGNALS,
    Manifest,
)
from services.audit.core.verify import BundleReport, ChainRow, Expected, SignalRow

# Columns an auditor queries, mapped to where the hashed content holds the same value.
_EVENT_LOG_COLUMNS = {
    "event_id": "event_id",
    "event_type": "event_type",
    "trial_id": "trial_id",
    "site_id": "site_id",
    "participant_id": "participant_id",
    "occurred_at": "occurred_at",
    "recorded_at": "recorded_at",
    "source": "source",
    "source_ref": "source_ref",
}
_AUDIT_TRAIL_COLUMNS = {
    "event_id": "event_id",
    "event_type": "event_type",
    "notification_id": "payload.notification_id",
    "signal_id": "payload.signal_id",
    "recorded_at": "recorded_at",
}
#: Acknowledgements and escalations concern a signal, not one email: notify fills their
#: notification_id column with their own event id (services/notify/core/audit.py).
_SIGNAL_LEVEL = frozenset({"alert_acknowledged", "alert_escalated"})
_CHAIN_COLUMNS = ["seq", "prev_hash", "hash"]
_BATCH_ROWS = 65_536
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def read_manifest(bundle: Path) -> Manifest:
    """Read and validate manifest.json.

    Raises:
        BundleError: there is no manifest, or it is not a version this tool reads.

    """
    path = bundle / MANIFEST_FILE
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise BundleError(f"{bundle} is not an audit bundle: no {MANIFEST_FILE}") from exc
    except ValidationError as exc:
        raise BundleError(f"{path} is not a manifest this version reads: {exc}") from exc


def write_manifest(bundle: Path, manifest: Manifest) -> Path:
    """Write manifest.json last and atomically: a bundle without one is incomplete."""
    path = bundle / MANIFEST_FILE
    partial = path.with_suffix(".json.partial")
    document = manifest.model_dump(mode="json")
    partial.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(path)
    return path


def verify_bundle(
    bundle: Path, heads: Sequence[bytes] | None = None
) -> tuple[Manifest, BundleReport]:
    """Check a bundle directory: file digests, the hash chains, then the published heads.

    Args:
        bundle: the bundle directory.
        heads: head messages read from NATS now (`adapters/published_heads.py`); by default the
            bundle's own `ingest_heads.jsonl`, when its export could read them.

    """
    manifest = read_manifest(bundle)
    names = list(dict.fromkeys([*manifest.files, *ALL_FILES]))
    digests = {
        name: file_sha256(bundle / name) if (bundle / name).is_file() else None
        for name in names
        if name in manifest.files or (bundle / name).is_file()
    }
    chains: dict[str, verify.Readout] = {
        name: _read_or_why(bundle / name, verify.expected_of(manifest.files.get(name)))
        for name in (EVENT_LOG, AUDIT_TRAIL)
    }
    rows = {
        name: counted
        for name, digest in digests.items()
        if digest is not None and name not in CHAINS
        if (counted := _parquet_rows(bundle / name)) is not None
    }
    signals = _signals_or_why(bundle / SIGNALS)
    report = verify.verify_bundle(manifest, digests, chains, rows, signals)
    return manifest, _with_heads(bundle, manifest, report, heads)


def _with_heads(
    bundle: Path, manifest: Manifest, report: BundleReport, heads: Sequence[bytes] | None
) -> BundleReport:
    """Add what disagrees between the exported log and the heads published before export."""
    if heads is None:
        if INGEST_HEADS not in manifest.files or not (bundle / INGEST_HEADS).is_file():
            return report  # an offline export, or a bundle from before heads were published
        heads = (bundle / INGEST_HEADS).read_bytes().splitlines()
    try:
        published = parse_heads(heads)
        hashes, last = read_log_hashes(bundle / EVENT_LOG, (seq for seq, _, _ in published))
    except (OSError, KeyError, ValueError, TypeError) as exc:
        problem = f"ingest_heads: cannot compare the published heads ({type(exc).__name__})"
        return replace(report, problems=(*report.problems, problem))
    found = heads_problems(published, hashes, last_seq=last, until=manifest.created_at)
    return replace(report, problems=(*report.problems, *found))


def _parquet_rows(path: Path) -> int | None:
    """Rows a Parquet file's footer declares; None when it is not readable Parquet."""
    try:
        return int(pq.read_metadata(path).num_rows)
    except (OSError, ValueError):  # pyarrow's errors derive from these
        # Not counted: a damaged file shows in its sha256, or in the tool that reads it.
        return None


def _read_or_why(path: Path, expected: Expected | None = None) -> verify.Readout:
    if not path.is_file():
        return "the file is missing"
    if path.name == EVENT_LOG:
        # A clean log is proven in one pass; anything else goes row by row to be located.
        proven = event_log_verified(path, verify.chain_name(EVENT_LOG), expected)
        if proven is not None:
            return proven
    try:
        return read_chain_rows(path)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        # pyarrow's errors derive from these; a damaged file is a finding, not a crash.
        return f"unreadable ({type(exc).__name__}: {str(exc)[:200]})"


def _signals_or_why(path: Path) -> list[SignalRow] | str | None:
    """The rows of signals.parquet; None when the bundle has none (it predates the file)."""
    if not path.is_file():
        return None
    try:
        return read_signal_rows(path)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        return f"unreadable ({type(exc).__name__}: {str(exc)[:200]})"


def read_signal_rows(path: Path) -> list[SignalRow]:
    """Rows of signals.parquet in file order; a file exported before the chain has no hashes.

    Such a file (no prev_hash/hash columns) reads as rows with none, which verify reports as
    not chained (older version), like the rows an upgraded rules file kept.
    """
    present = set(pq.read_schema(path).names)
    chained = [name for name in ("prev_hash", "hash", "partition") if name in present]
    result = []
    for row in _rows(path, ["outbox_seq", "body", *chained]):
        seq = row["outbox_seq"]
        body = (row["body"] or "").encode("utf-8")
        chain = (row.get("prev_hash"), row.get("hash"), row.get("partition"))
        result.append(SignalRow(seq if isinstance(seq, int) else 0, body, *chain))
    return result


def read_chain_rows(path: Path) -> list[ChainRow]:
    """Rows of a chained bundle file, in file order, ready for the pure verifier."""
    if path.name == EVENT_LOG:
        return list(_event_log_rows(path))
    if path.name == AUDIT_TRAIL:
        return list(_audit_trail_rows(path))
    raise ValueError(f"{path.name} is not a chained file")


def _event_log_rows(path: Path) -> Iterator[ChainRow]:
    for row in _rows(path, [*_CHAIN_COLUMNS, "content", *_EVENT_LOG_COLUMNS]):
        indexed = {target: row[column] for column, target in _EVENT_LOG_COLUMNS.items()}
        content = (row["content"] or "").encode("utf-8")
        yield ChainRow(_seq(row), content, row["prev_hash"] or "", row["hash"] or "", indexed)


def _audit_trail_rows(path: Path) -> Iterator[ChainRow]:
    for row in _rows(path, [*_CHAIN_COLUMNS, "wire", *_AUDIT_TRAIL_COLUMNS]):
        indexed = {target: row[column] for column, target in _AUDIT_TRAIL_COLUMNS.items()}
        if row["event_type"] in _SIGNAL_LEVEL:
            indexed["event_id#notification_id"] = indexed.pop("payload.notification_id")
        yield verify.audit_trail_row(
            _seq(row), row["wire"] or "", row["prev_hash"] or "", row["hash"] or "",
            columns=indexed,
        )  # fmt: skip


def _rows(path: Path, names: list[str]) -> Iterator[dict[str, Any]]:
    """Rows as dicts, read in Arrow batches column by column.

    Converting whole columns is several times faster than pyarrow's row dicts, whose
    tz-aware timestamps dominate the cost of verifying a large log.
    """
    source = pq.ParquetFile(path)
    for batch in source.iter_batches(batch_size=_BATCH_ROWS, columns=names):
        columns = [_pylist(batch.column(name)) for name in names]
        for values in zip(*columns, strict=True):
            yield dict(zip(names, values, strict=True))


def _pylist(column: pa.Array) -> list[Any]:
    if pa.types.is_timestamp(column.type) and column.type.tz is not None:
        # pyarrow builds a tz-aware datetime through the tz database for every value (about
        # 20 µs each); from epoch microseconds it is a few µs. The instants are the same.
        micros = column.cast(pa.timestamp("us", tz=column.type.tz)).cast(pa.int64()).to_pylist()
        return [None if v is None else _EPOCH + timedelta(microseconds=v) for v in micros]
    values: list[Any] = column.to_pylist()
    return values


def _seq(row: dict[str, Any]) -> int:
    # A null or non-integer seq is kept as 0, which the verifier reports as no position.
    value = row["seq"]
    return value if isinstance(value, int) else 0


def read_log_hashes(path: Path, seqs: Iterable[int]) -> tuple[dict[int, str], int]:
    """The event log file's hash at each wanted seq, and its last seq."""
    table = pq.read_table(path, columns=["seq", "hash"])
    wanted = sorted(set(seqs))
    last = int(pc.max(table["seq"]).as_py() or 0) if table.num_rows else 0
    picked = table.filter(pc.is_in(table["seq"], value_set=pa.array(wanted, pa.int64())))
    return dict(zip(picked["seq"].to_pylist(), picked["hash"].to_pylist(), strict=True)), last
