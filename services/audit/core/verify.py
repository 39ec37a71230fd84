"""Verify a hash chain and locate its first break (pure: rows in, report out; no I/O).

Each entry should hold `hash = sha256(prev_hash || canonical bytes)`, with `prev_hash` the
previous entry's hash (the genesis hash for the first) and seq 1, 2, 3, ... in file order.
The walk stops at the first entry that does not verify and says what most likely happened
there: `edited`, `deleted`, `inserted`, `reordered`, or, against the bundle manifest,
`truncated`. Which entry is first to break is certain; the class is the best explanation
of what the rows show (`_classify` has the reasoning).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from schemas import GENESIS_HASH, chain_hash
from services.audit.core._classify import content_break, link_break, seq_break
from services.audit.core._columns import audit_trail_row, column_mismatch
from services.audit.core.chain import (
    Break,
    BreakKind,
    BundleReport,
    ChainReport,
    ChainRow,
    Expected,
    FileCheck,
)
from services.audit.core.manifest import CHAINS, SIGNALS, FileEntry, Manifest
from services.audit.core.signals_chain import SignalRow, SignalsReport, signal_content, translated

__all__ = [
    "Break",
    "BreakKind",
    "BundleReport",
    "ChainReport",
    "ChainRow",
    "Expected",
    "FileCheck",
    "SignalRow",
    "SignalsReport",
    "audit_trail_row",
    "check_file",
    "column_mismatch",
    "expected_of",
    "verify_bundle",
    "verify_chain",
    "verify_signals",
]
#: A chain's rows as read from its file, why the file could not be read, or the report of
#: a chain the reader already proved intact (`adapters/_fast.py`).
Readout = Sequence[ChainRow] | str | ChainReport


def verify_bundle(
    manifest: Manifest,
    digests: Mapping[str, str | None],
    chains: Mapping[str, Readout],
    rows: Mapping[str, int] | None = None,
    signals: Sequence[SignalRow] | str | None = None,
) -> BundleReport:
    """Check every file's sha256 (and rows) against the manifest, then recompute the chains.

    Args:
        manifest: the bundle's manifest.
        digests: sha256 of each file found in the bundle (None when it is missing).
        chains: per chained file, its rows in file order, or why they could not be read.
        rows: rows counted in the files that are not chains (a chain counts its own).
        signals: the rows of signals.parquet, or why they could not be read; None when the
            bundle has none (it predates the file), which is not a finding.

    """
    names = list(dict.fromkeys([*manifest.files, *digests]))
    counted = rows or {}
    files = tuple(
        check_file(
            name,
            expected=manifest.files[name].sha256 if name in manifest.files else None,
            actual=digests.get(name),
            rows=_rows(manifest.files.get(name), counted.get(name)),
        )
        for name in names
    )
    reports, problems = [], []
    for name in CHAINS:
        readout = chains.get(name, "no rows were read")
        if isinstance(readout, str):
            problems.append(f"{name}: cannot verify the chain: {readout}")
            continue
        if isinstance(readout, ChainReport):  # verified already (the reader's fast path)
            reports.append(readout)
            continue
        entry = manifest.files.get(name)
        reports.append(verify_chain(chain_name(name), readout, _expected(entry)))
    if isinstance(signals, str):
        problems.append(f"{SIGNALS}: cannot verify the chain: {signals}")
    elif signals is not None:
        reports.extend(
            verify_signals(chain_name(SIGNALS) + suffix, rows)
            for suffix, rows in _by_partition(signals)
        )
    return BundleReport(files, tuple(reports), tuple(problems))


def chain_name(file_name: str) -> str:
    """The chain's name in reports: its file name without the extension."""
    return file_name.removesuffix(".parquet")


def expected_of(entry: FileEntry | None) -> Expected | None:
    """What a manifest entry says its chain holds (None when it says nothing)."""
    return _expected(entry)


def _expected(entry: FileEntry | None) -> Expected | None:
    if entry is None or entry.chain is None:
        return None
    return Expected(rows=entry.rows, last_seq=entry.chain.last_seq, head=entry.chain.head)


def _rows(entry: FileEntry | None, counted: int | None) -> tuple[int, int] | None:
    if entry is None or counted is None:
        return None
    return entry.rows, counted


def check_file(
    name: str, *, expected: str | None, actual: str | None, rows: tuple[int, int] | None = None
) -> FileCheck:
    """Compare a file's sha256 with the manifest's, and its rows when counted (manifest, file)."""
    if expected is None:
        return FileCheck(name, None, actual, "the manifest does not list it")
    if actual is None:
        return FileCheck(name, expected, None, "missing from the bundle")
    if actual != expected:
        problem = "sha256 differs from the manifest: the file was changed after export"
        return FileCheck(name, expected, actual, problem)
    if rows is not None and rows[0] != rows[1]:
        # Same bytes as exported, so the service reported a wrong count: the manifest is wrong.
        problem = f"holds {rows[1]} rows but the manifest records {rows[0]}"
        return FileCheck(name, expected, actual, problem)
    return FileCheck(name, expected, actual)


def verify_chain(
    name: str, rows: Sequence[ChainRow], expected: Expected | None = None
) -> ChainReport:
    """Walk the chain in file order; report OK or its first break."""
    prev = GENESIS_HASH
    for index, row in enumerate(rows):
        problem = _check(rows, index, prev, expected)
        if problem is not None:
            return _broken(name, rows, problem)
        prev = row.hash
    problem = _against_manifest(rows, prev, expected)
    if problem is not None:
        return _broken(name, rows, problem)
    return ChainReport(name, len(rows), len(rows), prev)


def _broken(name: str, rows: Sequence[ChainRow], problem: Break) -> ChainReport:
    verified = min(problem.position, len(rows))
    head = rows[verified - 1].hash if verified else GENESIS_HASH
    return ChainReport(name, len(rows), verified, head, problem)


def _check(
    rows: Sequence[ChainRow], index: int, prev: str, expected: Expected | None
) -> Break | None:
    row = rows[index]
    if row.seq != index + 1:
        return seq_break(rows, index, prev)
    if row.prev_hash != prev:
        return link_break(rows, index, prev, short=_short(rows, expected))
    if chain_hash(prev, row.content) != row.hash:
        return content_break(rows, index, prev)
    if row.claimed is not None and row.claimed != (row.seq, row.prev_hash, row.hash):
        detail = "the chain fields inside the wire form differ from the row's seq/prev_hash/hash"
        return Break("edited", row.seq, index, detail)
    mismatch = column_mismatch(row)
    if mismatch is not None:
        return Break("edited", row.seq, index, mismatch)
    return None


def _short(rows: Sequence[ChainRow], expected: Expected | None) -> bool:
    return expected is not None and len(rows) < expected.rows


def _against_manifest(
    rows: Sequence[ChainRow], head: str, expected: Expected | None
) -> Break | None:
    if expected is None or (len(rows) == expected.rows and head == expected.head):
        return None
    last = rows[-1].seq if rows else 0
    recorded = f"the manifest records {expected.rows} entries ending at seq {expected.last_seq}"
    if len(rows) < expected.rows:
        detail = f"the file ends at seq {last} (head {head[:12]}…) but {recorded}"
        return Break("truncated", last + 1, len(rows), detail)
    if len(rows) > expected.rows:
        detail = f"{len(rows) - expected.rows} entries follow the manifest's head: {recorded}"
        return Break("inserted", expected.rows + 1, expected.rows, detail)
    detail = (
        f"the last entry (seq {last}) hashes to {head[:12]}…, the manifest's head is "
        f"{expected.head[:12]}…: it was rewritten and re-hashed"
    )
    return Break("edited", last, len(rows) - 1, detail)


def _by_partition(rows: Sequence[SignalRow]) -> list[tuple[str, list[SignalRow]]]:
    """The rows per rules partition (one chain each), in first-seen order; one group if none."""
    groups: dict[int | None, list[SignalRow]] = {}
    for row in rows:
        groups.setdefault(row.partition, []).append(row)
    if list(groups) == [None]:
        return [("", list(rows))]
    return [(f" (partition {key})", group) for key, group in groups.items()]


def verify_signals(name: str, rows: Sequence[SignalRow]) -> SignalsReport:
    """Walk the signals chain (`_signals` has the format); OK or the first break, by seq.

    The manifest records no head for it (its chains are the ingest and notify ones): the
    file's sha256 in the manifest is what catches a truncated or wholly re-hashed copy.
    """
    unchained = next((i for i, row in enumerate(rows) if row.hash is not None), len(rows))
    chained = rows[unchained:]
    end = next((i for i, row in enumerate(chained) if row.hash is None), len(chained))
    shifted = [
        ChainRow(row.seq - unchained, signal_content(row.seq, row.body), row.prev_hash or "",
                 row.hash or "")
        for row in chained[:end]
    ]  # fmt: skip
    walked = verify_chain(name, shifted)
    if walked.problem is not None:
        problem = translated(walked.problem, unchained)
    elif end < len(chained):
        detail = "the row has no hash, after chained rows: its chain fields were removed"
        problem = Break("edited", chained[end].seq, unchained + end, detail)
    else:
        return SignalsReport(name, len(rows), len(chained), walked.head, None, unchained)
    return SignalsReport(name, len(rows), walked.verified, walked.head, problem, unchained)
