"""The rules service's configuration history in the audit bundle.

An as-of replay applies the configuration that was live at each fact, so the bundle must
carry every configuration the service switched to.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.audit.adapters.bundle_reader import read_manifest, verify_bundle
from services.audit.adapters.export_offline import NOTIFY_FILE, RULES_FILE, export_offline
from services.audit.core.manifest import CONFIG_HISTORY, EVENT_LOG, SIGNALS
from services.notify.adapters.duckdb_store import DuckDBNotificationStore
from services.rules.adapters.audit_export import (
    CONFIG_HISTORY_FILE,
    SIGNALS_FILE,
    copy_rules_snapshot,
)
from services.rules.adapters.duckdb_store import DuckDBRulesStore
from services.rules.core.config import TrialConfig
from services.rules.ports import Commit, ConfigActivation, ConfigIdentity
from tests.factories import enrolment, sae, unique
from tests.unit.audit.bundles import packaged_toml, write_bundle
from tests.unit.audit.logs import accepted_wires, write_log

SUBJECT = "t.rules.signal_raised.v1"
COLUMNS = [
    "from_seq",
    "config_version",
    "config_sha256",
    "config_toml",
    "rule_versions",
    "activated_at",
]
DAY1 = datetime(2024, 3, 1, 9, tzinfo=UTC)


def _identity(version: str, rule_versions: tuple[tuple[str, int], ...] = ()) -> ConfigIdentity:
    text = f'[trial]\nid = "T"\nconfig_version = "{version}"\n'
    digest = hashlib.sha256(text.encode()).hexdigest()
    return ConfigIdentity(version, digest, text, rule_versions)


async def test_the_snapshot_writes_the_history_in_from_seq_order_with_the_signals(
    tmp_path: Path,
) -> None:
    """Auditors get every configuration switch, its position and its exact text."""
    store = DuckDBRulesStore(tmp_path / "rules.duckdb", signal_subject=SUBJECT)
    v1, v2 = _identity("T.v1"), _identity("T.v2", (("VB-04", 2), ("AKI-04", 1)))
    await store.open()
    try:
        await store.commit(Commit("c", (uuid4(),), activation=ConfigActivation(1, v1)))
        await store.commit(Commit("c", (uuid4(),), activation=ConfigActivation(42, v2)))
        reports = await store.export_snapshot(tmp_path / "out")
    finally:
        await store.close()

    table = pq.read_table(tmp_path / "out" / CONFIG_HISTORY_FILE)
    rows = table.to_pylist()
    assert set(reports) == {SIGNALS_FILE, CONFIG_HISTORY_FILE}
    report = reports[CONFIG_HISTORY_FILE]
    assert report["rows"] == 2
    assert report["sha256"] == hashlib.sha256(Path(report["path"]).read_bytes()).hexdigest()
    assert table.schema.names == COLUMNS
    assert table.schema.field("from_seq").type == pa.int64()
    assert table.schema.field("activated_at").type == pa.timestamp("us", tz="UTC")
    assert [(r["from_seq"], r["config_version"]) for r in rows] == [(1, "T.v1"), (42, "T.v2")]
    assert [r["config_toml"] for r in rows] == [v1.toml, v2.toml]
    assert [r["config_sha256"] for r in rows] == [v1.sha256, v2.sha256]
    assert json.loads(rows[1]["rule_versions"]) == {"AKI-04": 1, "VB-04": 2}
    assert json.loads(rows[0]["rule_versions"]) == {}
    assert all(abs(r["activated_at"] - datetime.now(UTC)) < timedelta(minutes=5) for r in rows)
    assert reports[SIGNALS_FILE]["rows"] == 0


def _older_rules_file(path: Path) -> None:
    """A rules file as the service wrote it before it kept a configuration history."""
    old = duckdb.connect(str(path))
    old.execute(
        "CREATE TABLE signal_outbox (signal_id UUID PRIMARY KEY, seq BIGINT NOT NULL,"
        " subject VARCHAR NOT NULL, body BLOB NOT NULL, published_at TIMESTAMPTZ)"
    )
    old.close()


def test_a_rules_file_older_than_the_history_exports_it_empty_read_only(tmp_path: Path) -> None:
    """The offline export of a file from before the history was kept still gives the file."""
    database = tmp_path / "rules.duckdb"
    _older_rules_file(database)
    out = tmp_path / "out"
    out.mkdir()

    read_only = duckdb.connect(str(database), read_only=True)
    try:
        reports = copy_rules_snapshot(read_only, out)
    finally:
        read_only.close()

    assert reports[CONFIG_HISTORY_FILE]["rows"] == 0
    table = pq.read_table(out / CONFIG_HISTORY_FILE)
    assert (table.num_rows, table.schema.names) == (0, COLUMNS)
    assert table.schema.field("activated_at").type == pa.timestamp("us", tz="UTC")


def _two_saes() -> list[dict[str, object]]:
    """Enrolment and SAE of two participants: log seqs 1-2 and 3-4."""
    items = []
    for offset in range(2):
        participant = unique("P")
        at = DAY1 + timedelta(hours=offset)
        items += [
            (enrolment(participant_id=participant), at),
            (sae(participant_id=participant), at),
        ]
    return accepted_wires(items)


@pytest.mark.slow
def test_a_bundle_by_default_records_the_replay_configuration_from_the_first_seq(
    tmp_path: Path,
) -> None:
    """write_bundle's default: one activation, the packaged v1, from seq 1; it verifies."""
    bundle = write_bundle(tmp_path / "bundle", _two_saes())

    rows = pq.read_table(bundle / CONFIG_HISTORY).to_pylist()
    manifest, report = verify_bundle(bundle)

    assert [(r["from_seq"], r["config_version"]) for r in rows] == [(1, "NCT01724398.v1")]
    assert rows[0]["config_toml"] == packaged_toml("v1")
    assert manifest.files[CONFIG_HISTORY].rows == 1
    assert report.ok, report.first_problem()


@pytest.mark.slow
def test_a_bundle_can_switch_configuration_mid_log(tmp_path: Path) -> None:
    """configs=[(1, v1), (3, v2)]: v1 evaluates seqs 1-2, v2 from seq 3, as after a restart."""
    v1, v2 = packaged_toml("v1"), packaged_toml("v2")

    bundle = write_bundle(tmp_path / "bundle", _two_saes(), configs=[(1, v1), (3, v2)])

    rows = pq.read_table(bundle / CONFIG_HISTORY).to_pylist()
    signals = pq.read_table(bundle / SIGNALS).to_pylist()
    manifest, report = verify_bundle(bundle)
    assert [(r["from_seq"], r["config_version"]) for r in rows] == [
        (1, "NCT01724398.v1"),
        (3, "NCT01724398.v2"),
    ]
    assert [r["config_toml"] for r in rows] == [v1, v2]
    assert json.loads(rows[1]["rule_versions"]) == {"VB-04": 2}
    parsed = TrialConfig.from_mapping(tomllib.loads(rows[1]["config_toml"]))
    assert parsed.version == "NCT01724398.v2"
    assert [s["rule_id"] for s in signals].count("SAE-01") == 2
    assert read_manifest(bundle).files[CONFIG_HISTORY].rows == 2
    assert report.ok, report.first_problem()
    assert manifest.files[CONFIG_HISTORY].chain is None


@pytest.mark.slow
def test_a_bundle_whose_history_starts_late_leaves_the_earlier_facts_unrecorded(
    tmp_path: Path,
) -> None:
    """Facts before the first activation model a service from before the history was kept."""
    bundle = write_bundle(tmp_path / "bundle", _two_saes(), configs=[(3, packaged_toml("v2"))])

    rows = pq.read_table(bundle / CONFIG_HISTORY).to_pylist()
    signals = pq.read_table(bundle / SIGNALS).to_pylist()

    assert [(r["from_seq"], r["config_version"]) for r in rows] == [(3, "NCT01724398.v2")]
    assert [s["rule_id"] for s in signals].count("SAE-01") == 2


def test_activations_out_of_order_are_a_test_error(tmp_path: Path) -> None:
    """A history must be in ascending from_seq; the helper refuses anything else."""
    with pytest.raises(ValueError, match="ascending"):
        write_bundle(
            tmp_path / "bundle",
            _two_saes(),
            configs=[(3, packaged_toml("v1")), (1, packaged_toml("v2"))],
        )


def _data_dir(tmp_path: Path) -> Path:
    """A stopped stack's data directory: ingest's log, notify's file (empty), no rules file."""
    data = tmp_path / "data"
    write_log(data, _two_saes())
    (data / EVENT_LOG).unlink()  # write_log exports it too; a data directory holds no bundle
    notify = DuckDBNotificationStore(data / NOTIFY_FILE)
    notify.open()
    notify.close()
    return data


@pytest.mark.slow
def test_the_offline_export_carries_the_config_history(tmp_path: Path) -> None:
    """`audit export --offline` copies the history from the stopped rules file, and verifies."""
    data = _data_dir(tmp_path)
    store = DuckDBRulesStore(data / RULES_FILE, signal_subject=SUBJECT)

    async def record() -> None:
        await store.open()
        try:
            activation = ConfigActivation(1, _identity("v1"))
            await store.commit(Commit("c", (uuid4(),), activation=activation))
        finally:
            await store.close()

    asyncio.run(record())

    manifest = export_offline(data, tmp_path / "bundle")
    _, report = verify_bundle(tmp_path / "bundle")

    rows = pq.read_table(tmp_path / "bundle" / CONFIG_HISTORY).to_pylist()
    assert [(r["from_seq"], r["config_version"]) for r in rows] == [(1, "v1")]
    assert manifest.files[CONFIG_HISTORY].rows == 1
    assert report.ok, report.first_problem()


@pytest.mark.slow
def test_an_offline_export_of_an_older_rules_file_lists_an_empty_history(tmp_path: Path) -> None:
    """A rules file from before the history was kept exports, read-only, an empty file."""
    data = _data_dir(tmp_path)
    _older_rules_file(data / RULES_FILE)

    manifest = export_offline(data, tmp_path / "bundle")
    _, report = verify_bundle(tmp_path / "bundle")

    assert manifest.files[CONFIG_HISTORY].rows == 0
    assert report.ok, report.first_problem()
