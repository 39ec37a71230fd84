"""The rules' signals on a hash chain: `audit verify` covers the decisions as well as the facts."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from safetymon.cli import app
from schemas import GENESIS_HASH, chain_hash
from services.audit.adapters.bundle_reader import read_signal_rows
from services.audit.core.manifest import SIGNALS
from services.audit.core.verify import SignalRow, verify_signals
from services.rules.adapters._duckdb_sql import chain_signals
from services.rules.adapters.duckdb_store import DuckDBRulesStore
from services.rules.core.errors import AlreadyProcessedError
from services.rules.ports import Commit
from tests.contract.ports.test_rules_store import CONSUMER, SUBJECT, commit_of, history
from tests.factories import enrolment, lab, unique
from tests.unit.audit.bundles import write_bundle
from tests.unit.audit.logs import accepted_wires

DAY1 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def _bundle(tmp_path: Path) -> Path:
    """Three participants with a positive blood culture each: three signals, seq 1-3."""
    items = []
    for _ in range(3):
        pid = unique("P")
        items += [
            (enrolment(participant_id=pid, occurred_at="2024-03-01T08:00:00Z"), DAY1),
            (
                lab(loinc="600-7", value=1, unit="1", participant_id=pid,
                    occurred_at="2024-03-02T08:00:00Z"),
                DAY1 + timedelta(days=1),
            ),
        ]  # fmt: skip
    return write_bundle(tmp_path / "bundle", accepted_wires(items))


def _verify(bundle: Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, ["audit", "verify", str(bundle), "--json"])
    return result.exit_code, json.loads(result.stdout)


def _signals_chain(report: dict[str, Any]) -> dict[str, Any]:
    chains: list[dict[str, Any]] = [c for c in report["chains"] if c["name"] == "signals"]
    (chain,) = chains
    return chain


def _rewrite_signals(bundle: Path, edit: Any) -> None:
    table = pq.read_table(bundle / SIGNALS)
    rows = [edit(row) for row in table.to_pylist()]
    # DuckDB's COPY marks NOT NULL columns non-nullable; a forger's file need not.
    schema = pa.schema([field.with_nullable(True) for field in table.schema])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), bundle / SIGNALS)


@pytest.mark.slow
def test_an_intact_bundle_verifies_its_signals_chain(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)

    code, report = _verify(bundle)

    rows = pq.read_table(bundle / SIGNALS).to_pylist()
    assert code == 0, report["first_problem"]
    assert _signals_chain(report)["ok"]
    assert _signals_chain(report)["count"] == len(rows) == 3
    assert [r["outbox_seq"] for r in rows] == [1, 2, 3]
    assert rows[0]["prev_hash"] == GENESIS_HASH
    assert [r["prev_hash"] for r in rows[1:]] == [r["hash"] for r in rows[:-1]]
    assert _signals_chain(report)["head"] == rows[-1]["hash"]


@pytest.mark.slow
def test_the_stored_hash_is_sha256_of_prev_hash_seq_and_body(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)

    rows = pq.read_table(bundle / SIGNALS).to_pylist()

    for row in rows:
        content = f"{row['outbox_seq']}:".encode("ascii") + row["body"].encode("utf-8")
        assert row["hash"] == chain_hash(row["prev_hash"], content)


@pytest.mark.slow
def test_an_edited_signal_body_fails_verify_naming_its_seq(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)

    def forge(row: dict[str, Any]) -> dict[str, Any]:
        if row["outbox_seq"] == 2:
            document = json.loads(row["body"])
            document["status"] = "retracted"
            row["body"] = json.dumps(document, separators=(",", ":"))
        return row

    _rewrite_signals(bundle, forge)
    code, report = _verify(bundle)

    chain = _signals_chain(report)
    assert code == 1
    assert not chain["ok"]
    assert (chain["problem"]["kind"], chain["problem"]["seq"]) == ("edited", 2)
    assert chain["verified"] == 1


@pytest.mark.slow
def test_a_deleted_signal_fails_verify_at_the_gap(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    table = pq.read_table(bundle / SIGNALS)
    pq.write_table(table.filter([True, False, True]), bundle / SIGNALS)

    code, report = _verify(bundle)

    chain = _signals_chain(report)
    assert code == 1
    assert (chain["problem"]["kind"], chain["problem"]["seq"]) == ("deleted", 2)


@pytest.mark.slow
def test_rows_without_a_hash_before_the_chain_are_reported_as_older_not_broken(
    tmp_path: Path,
) -> None:
    bundle = _bundle(tmp_path)
    rows = pq.read_table(bundle / SIGNALS).to_pylist()
    # As if the first row was written by a version without the chain, and the others after
    # the upgrade: the chain then starts from the genesis hash at seq 2.
    second = f"2:{rows[1]['body']}".encode()
    third = f"3:{rows[2]['body']}".encode()
    rehashed = chain_hash(GENESIS_HASH, second)
    fixes = {
        1: (None, None),
        2: (GENESIS_HASH, rehashed),
        3: (rehashed, chain_hash(rehashed, third)),
    }

    def upgrade(row: dict[str, Any]) -> dict[str, Any]:
        row["prev_hash"], row["hash"] = fixes[row["outbox_seq"]]
        return row

    _rewrite_signals(bundle, upgrade)
    code, report = _verify(bundle)
    text = CliRunner().invoke(app, ["audit", "verify", str(bundle)], env={"COLUMNS": "250"})

    chain = _signals_chain(report)
    assert chain["ok"]
    assert chain["unchained"] == 1
    assert (chain["count"], chain["verified"]) == (3, 2)
    assert "not chained (older version): 1 rows" in text.stdout
    assert code == 1  # only because the file's sha256 is no longer the manifest's
    assert report["first_problem"].startswith(f"{SIGNALS}: sha256 differs")


@pytest.mark.slow
def test_a_missing_hash_after_a_chained_row_is_an_error(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)

    def unhash(row: dict[str, Any]) -> dict[str, Any]:
        if row["outbox_seq"] == 2:
            row["prev_hash"] = row["hash"] = None
        return row

    _rewrite_signals(bundle, unhash)
    code, report = _verify(bundle)

    chain = _signals_chain(report)
    assert code == 1
    assert (chain["problem"]["kind"], chain["problem"]["seq"]) == ("edited", 2)
    assert "no hash" in chain["problem"]["detail"]


def _chained_rows(bodies: list[bytes]) -> list[SignalRow]:
    links = chain_signals(GENESIS_HASH, 1, bodies)
    return [
        SignalRow(seq, body, prev, digest)
        for seq, (body, (prev, digest)) in enumerate(zip(bodies, links, strict=True), start=1)
    ]


def test_chain_signals_links_each_row_to_the_one_before_over_seq_and_body() -> None:
    bodies = [b'{"a":1}', b'{"a":2}', b'{"a":3}']

    links = chain_signals("f" * 64, 8, bodies)

    assert links[0] == ("f" * 64, chain_hash("f" * 64, b'8:{"a":1}'))
    assert [prev for prev, _ in links[1:]] == [digest for _, digest in links[:-1]]
    assert links[2][1] == chain_hash(links[1][1], b'10:{"a":3}')


def test_the_verifier_recomputes_the_rules_services_chain() -> None:
    rows = _chained_rows([b'{"a":1}', b'{"a":2}', b'{"a":3}'])

    report = verify_signals("signals", rows)

    assert (report.ok, report.count, report.verified, report.unchained) == (True, 3, 3, 0)
    assert report.head == rows[-1].hash


def test_a_renumbered_or_reordered_row_does_not_verify() -> None:
    rows = _chained_rows([b'{"a":1}', b'{"a":2}', b'{"a":3}'])
    renumbered = [rows[0], replace(rows[2], seq=2)]
    reordered = [rows[0], rows[2], rows[1]]

    renumbered_report = verify_signals("signals", renumbered)
    reordered_report = verify_signals("signals", reordered)

    assert renumbered_report.problem is not None
    assert renumbered_report.problem.seq == 2
    assert reordered_report.problem is not None
    assert (reordered_report.problem.kind, reordered_report.problem.seq) == ("reordered", 2)


@pytest.mark.slow
async def test_a_refused_commit_or_a_repeated_signal_leaves_the_chain_whole(
    tmp_path: Path,
) -> None:
    state, signals, facts = history()
    other_state, other_signals, _ = history()
    later = [history() for _ in range(2)]
    store = DuckDBRulesStore(tmp_path / "rules.duckdb", signal_subject=SUBJECT)
    await store.open()
    try:
        await store.commit(commit_of(facts, state, signals))
        with pytest.raises(AlreadyProcessedError):  # its signals were chained, then refused
            await store.commit(commit_of(facts[:1], other_state, other_signals))
        await store.commit(Commit(CONSUMER, (uuid4(),), signals=signals))  # already held
        await store.commit(commit_of(later[0][2], later[0][0], later[0][1]))
        await store.close()
        await store.open()  # the head is read back from the file
        await store.commit(commit_of(later[1][2], later[1][0], later[1][1]))
        await store.export_snapshot(tmp_path / "out")
    finally:
        await store.close()

    rows = read_signal_rows(tmp_path / "out" / SIGNALS)

    report = verify_signals("signals", rows)
    assert report.ok, report.problem
    assert [row.seq for row in rows] == [1, 2, 3, 4, 5, 6]
    assert report.verified == 6
