"""`audit verify` compares the exported log with the heads ingest published on NATS.

A log edited and re-hashed from the edit to its end verifies on its own, and an attacker
holding the bundle can rewrite its manifest too; the heads published before the export
still name the old hashes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kit.files import file_sha256
from schemas import GENESIS_HASH, chain_hash
from services.audit.adapters._assemble import finish
from services.audit.adapters.bundle_reader import read_manifest, verify_bundle
from services.audit.core.manifest import EVENT_LOG, INGEST_HEADS, MANIFEST_FILE
from services.ingest.adapters.head_anchor import head_message
from services.ingest.core.chain import LogHead
from tests.factories import enrolment, lab
from tests.unit.audit.bundles import write_bundle
from tests.unit.audit.logs import accepted_wires

# Each test exports and verifies a whole log written by ingest's own store.
pytestmark = pytest.mark.slow

_AT = datetime(2024, 3, 1, tzinfo=UTC)


def _bundle(tmp_path: Path, heads_at: tuple[int, ...]) -> Path:
    """A bundle of 5 facts whose export read heads published at these seqs."""
    items = [enrolment(participant_id="P-1", site_id="S01")]
    items += [lab(participant_id="P-1", site_id="S01") for _ in range(4)]
    bundle = write_bundle(tmp_path / "b", accepted_wires((i, _AT) for i in items))
    table = pq.read_table(bundle / EVENT_LOG, columns=["seq", "hash"])
    hashes = dict(zip(table["seq"].to_pylist(), table["hash"].to_pylist(), strict=True))
    lines = [head_message(LogHead(s, hashes.get(s, "f" * 64)), _AT) for s in heads_at]
    (bundle / INGEST_HEADS).write_bytes(b"".join(line + b"\n" for line in lines))
    _refinish(bundle)
    return bundle


def _refinish(bundle: Path) -> None:
    """Rewrite the manifest from the files as they are now (what an attacker would do)."""
    manifest = read_manifest(bundle)
    table = pq.read_table(bundle / EVENT_LOG, columns=["seq", "hash"]).to_pylist()
    reports = {
        name: {"rows": entry.rows, "sha256": file_sha256(bundle / name)}
        | ({"chain": entry.chain.model_dump()} if entry.chain else {})
        for name, entry in manifest.files.items()
    }
    reports[EVENT_LOG]["chain"] = {"first_seq": 1, "last_seq": len(table),
                                   "head": table[-1]["hash"]}  # fmt: skip
    lines = (bundle / INGEST_HEADS).read_bytes().splitlines()
    reports[INGEST_HEADS] = {"rows": len(lines), "sha256": file_sha256(bundle / INGEST_HEADS)}
    (bundle / MANIFEST_FILE).unlink()
    finish(bundle, reports, source=manifest.source)


def _rechain(bundle: Path) -> None:
    """Edit entry 2's lab value and recompute every hash: the file verifies on its own."""
    table = pq.read_table(bundle / EVENT_LOG)
    rows = table.to_pylist()
    prev = GENESIS_HASH
    for row in rows:
        if row["seq"] == 2:
            document = json.loads(row["content"])
            document["payload"]["result"]["value"] = 0.1
            row["content"] = json.dumps(document, sort_keys=True, separators=(",", ":"))
        row["prev_hash"] = prev
        row["hash"] = prev = chain_hash(prev, row["content"].encode("utf-8"))
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), bundle / EVENT_LOG)
    _refinish(bundle)


def test_a_log_that_holds_its_published_heads_verifies(tmp_path: Path) -> None:
    _, report = verify_bundle(_bundle(tmp_path, heads_at=(2, 5)))
    assert report.ok, report.first_problem()


def test_a_rechained_log_disagrees_with_a_published_head(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, heads_at=(2, 5))
    _rechain(bundle)

    _, report = verify_bundle(bundle)

    assert all(chain.ok for chain in report.chains)  # the chain alone verifies
    assert not report.ok
    assert "entry 2" in (report.first_problem() or "")
    assert "rewritten and re-hashed" in (report.first_problem() or "")


def test_a_head_beyond_the_logs_end_means_entries_were_removed(tmp_path: Path) -> None:
    _, report = verify_bundle(_bundle(tmp_path, heads_at=(7,)))
    assert "head 7" in (report.first_problem() or "")


def test_heads_published_after_the_export_are_not_held_against_it(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, heads_at=(5,))
    later = datetime.now(UTC) + timedelta(days=1)
    extra = head_message(LogHead(9, "e" * 64), later)

    _, report = verify_bundle(bundle, heads=[*(bundle / INGEST_HEADS).read_bytes().splitlines(),
                                             extra])  # fmt: skip

    assert report.ok, report.first_problem()
