"""What the services accept as a snapshot request: no paths from outside are trusted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.audit.adapters.export_offline import (
    INGEST_FILE,
    NOTIFY_FILE,
    NOTIFY_JOURNAL_FILE,
    RULES_FILE,
)
from services.audit.core.manifest import (
    AUDIT_TRAIL,
    BUNDLE_FILES,
    CONFIG_HISTORY,
    EVENT_LOG,
    OUTBOX,
    SIGNALS,
)
from services.ingest.adapters.audit_export import EVENT_LOG_FILE, AuditExports
from services.ingest.config import Settings as IngestSettings
from services.notify.adapters.audit_export import (
    AUDIT_TRAIL_FILE,
    OUTBOX_FILE,
    SnapshotRequestError,
    requested_directory,
    snapshot_subject,
)
from services.notify.config import Settings as NotifySettings
from services.rules.adapters import audit_export as rules_export
from services.rules.config import Settings as RulesSettings


async def _export(directory: Path) -> dict[str, object]:
    return {"directory": str(directory)}


def test_the_services_write_the_bundle_file_names() -> None:
    written = (
        EVENT_LOG_FILE,
        AUDIT_TRAIL_FILE,
        OUTBOX_FILE,
        rules_export.SIGNALS_FILE,
        rules_export.CONFIG_HISTORY_FILE,
    )

    assert written == (EVENT_LOG, AUDIT_TRAIL, OUTBOX, SIGNALS, CONFIG_HISTORY)
    assert set(BUNDLE_FILES) == {EVENT_LOG, AUDIT_TRAIL, OUTBOX, SIGNALS, CONFIG_HISTORY}


def test_offline_export_opens_the_services_own_files(tmp_path: Path) -> None:
    assert IngestSettings(data_dir=tmp_path).duckdb_path.name == INGEST_FILE
    assert RulesSettings(data_dir=tmp_path).duckdb_path.name == RULES_FILE
    assert NotifySettings(data_dir=tmp_path).duckdb_path.name == NOTIFY_FILE
    assert NotifySettings(data_dir=tmp_path).sent_journal_path.name == NOTIFY_JOURNAL_FILE


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (snapshot_subject("safetymon"), "safetymon.notify.audit.snapshot"),
        (rules_export.snapshot_subject("safetymon"), "safetymon.audit.rules.snapshot"),
    ],
)
def test_the_snapshot_subjects_are_outside_every_stream(subject: str, expected: str) -> None:
    """A stream capturing a request would store it for ever and answer it with a PubAck."""
    assert subject == expected
    assert not subject.startswith(("safetymon.ingest.", "safetymon.rules.", "safetymon.report."))


def test_a_request_without_a_directory_gets_a_new_one_under_the_root(tmp_path: Path) -> None:
    first = requested_directory(b"{}", default_root=tmp_path)
    second = requested_directory(b"", default_root=tmp_path)

    assert first.parent == tmp_path
    assert second.parent == tmp_path
    assert first != second


@pytest.mark.parametrize("body", [b'["x"]', b'{"directory": "relative/dir"}', b'{"directory": 5}'])
def test_a_request_that_is_not_an_absolute_directory_is_refused(
    body: bytes, tmp_path: Path
) -> None:
    with pytest.raises(SnapshotRequestError):
        requested_directory(body, default_root=tmp_path)


def test_rules_never_overwrites_an_earlier_signals_file_but_ignores_the_others(
    tmp_path: Path,
) -> None:
    request = json.dumps({"directory": str(tmp_path)}).encode()
    (tmp_path / AUDIT_TRAIL_FILE).write_bytes(b"notify's, not rules'")

    assert rules_export.requested_directory(request, default_root=tmp_path) == tmp_path
    (tmp_path / SIGNALS).write_bytes(b"earlier")
    with pytest.raises(SnapshotRequestError, match="nothing is overwritten"):
        rules_export.requested_directory(request, default_root=tmp_path)
    (tmp_path / SIGNALS).unlink()
    (tmp_path / CONFIG_HISTORY).write_bytes(b"earlier")
    with pytest.raises(SnapshotRequestError, match="nothing is overwritten"):
        rules_export.requested_directory(request, default_root=tmp_path)


def test_a_request_never_overwrites_an_earlier_snapshot(tmp_path: Path) -> None:
    (tmp_path / AUDIT_TRAIL_FILE).write_bytes(b"earlier")

    with pytest.raises(SnapshotRequestError, match="nothing is overwritten"):
        requested_directory(
            json.dumps({"directory": str(tmp_path)}).encode(), default_root=tmp_path
        )


def test_ingest_resolves_only_its_own_snapshot_files(tmp_path: Path) -> None:
    exports = AuditExports(root=tmp_path / "exports", export=_export)
    snapshot_id, directory = exports.create()
    (directory / EVENT_LOG_FILE).write_bytes(b"parquet")
    (tmp_path / "secret.txt").write_text("no")

    assert exports.resolve(snapshot_id, EVENT_LOG_FILE) == directory / EVENT_LOG_FILE
    assert exports.resolve(snapshot_id, "../../secret.txt") is None
    assert exports.resolve("..", "secret.txt") is None
    assert exports.resolve("20240301T000000000000Z", EVENT_LOG_FILE) is None
