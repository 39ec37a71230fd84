"""Whole-bundle verification (pure): file digests are checked first, then both chains."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.audit.core.errors import ExportError
from services.audit.core.manifest import (
    AUDIT_TRAIL,
    CONFIG_HISTORY,
    EVENT_LOG,
    OUTBOX,
    SENT_JOURNAL,
    SIGNALS,
    Manifest,
    build_manifest,
)
from services.audit.core.verify import verify_bundle
from tests.unit.audit import factories as f

SHA = {
    EVENT_LOG: "a" * 64,
    AUDIT_TRAIL: "b" * 64,
    OUTBOX: "c" * 64,
    SIGNALS: "e" * 64,
    CONFIG_HISTORY: "7" * 64,
}


def _manifest(log, trail) -> Manifest:
    def chain(rows):
        return {"first_seq": 1, "last_seq": rows[-1].seq, "head": rows[-1].hash}

    return build_manifest(
        {
            EVENT_LOG: {"rows": len(log), "sha256": SHA[EVENT_LOG], "chain": chain(log)},
            AUDIT_TRAIL: {"rows": len(trail), "sha256": SHA[AUDIT_TRAIL], "chain": chain(trail)},
            OUTBOX: {"rows": 3, "sha256": SHA[OUTBOX]},
            SIGNALS: {"rows": 5, "sha256": SHA[SIGNALS]},
            CONFIG_HISTORY: {"rows": 2, "sha256": SHA[CONFIG_HISTORY]},
        },
        created_at=datetime(2024, 3, 1, tzinfo=UTC),
        source={"mode": "test"},
    )


def test_a_bundle_whose_files_and_chains_all_verify_is_ok() -> None:
    log, trail = f.event_log(6), f.audit_trail(4)

    report = verify_bundle(_manifest(log, trail), SHA, {EVENT_LOG: log, AUDIT_TRAIL: trail})

    assert report.ok
    assert report.first_problem() is None
    assert [(c.name, c.count) for c in report.chains] == [
        ("event_log", 6),
        ("notify_audit_trail", 4),
    ]


def test_a_file_whose_sha256_differs_from_the_manifest_is_reported_first() -> None:
    log, trail = f.event_log(6), f.audit_trail(4)
    digests = {**SHA, AUDIT_TRAIL: "d" * 64}

    report = verify_bundle(
        _manifest(log, trail), digests, {EVENT_LOG: f.flip_byte(log, 2), AUDIT_TRAIL: trail}
    )

    assert not report.ok
    assert report.first_problem() == (
        f"{AUDIT_TRAIL}: sha256 differs from the manifest: the file was changed after export"
    )
    assert report.chains[0].problem is not None  # the chain is still checked and reported
    assert report.chains[0].problem.kind == "edited"


def test_a_missing_file_and_an_unreadable_chain_are_problems() -> None:
    log, trail = f.event_log(3), f.audit_trail(2)
    digests = {**SHA, OUTBOX: None}

    report = verify_bundle(
        _manifest(log, trail), digests, {EVENT_LOG: log, AUDIT_TRAIL: "unreadable (bad magic)"}
    )

    assert not report.ok
    assert report.first_problem() == f"{OUTBOX}: missing from the bundle"
    assert report.problems == (f"{AUDIT_TRAIL}: cannot verify the chain: unreadable (bad magic)",)


def test_a_chain_problem_is_summarised_with_its_kind_and_seq() -> None:
    log, trail = f.event_log(6), f.audit_trail(4)

    report = verify_bundle(
        _manifest(log, trail), SHA, {EVENT_LOG: log, AUDIT_TRAIL: f.delete(trail, 2)}
    )

    assert report.first_problem() is not None
    assert report.first_problem().startswith("notify_audit_trail: deleted at seq 2:")


def test_a_manifest_needs_every_bundle_file() -> None:
    with pytest.raises(ExportError, match=OUTBOX):
        build_manifest({EVENT_LOG: {}, AUDIT_TRAIL: {}}, created_at=datetime.now(UTC), source={})


def test_a_malformed_service_report_is_an_export_error() -> None:
    files = {name: {"rows": 1, "sha256": "not a digest"} for name in SHA}

    with pytest.raises(ExportError, match="malformed"):
        build_manifest(files, created_at=datetime.now(UTC), source={})


def test_the_live_signals_are_checked_by_sha256_and_rows_but_are_no_chain() -> None:
    log, trail = f.event_log(3), f.audit_trail(2)
    manifest = _manifest(log, trail)
    chains = {EVENT_LOG: log, AUDIT_TRAIL: trail}

    same = verify_bundle(manifest, SHA, chains, {OUTBOX: 3, SIGNALS: 5})
    changed = verify_bundle(manifest, {**SHA, SIGNALS: "f" * 64}, chains)
    miscounted = verify_bundle(manifest, SHA, chains, {OUTBOX: 3, SIGNALS: 4})

    assert same.ok
    assert manifest.files[SIGNALS].chain is None
    assert [c.name for c in same.chains] == ["event_log", "notify_audit_trail"]
    assert changed.first_problem() == (
        f"{SIGNALS}: sha256 differs from the manifest: the file was changed after export"
    )
    assert miscounted.first_problem() == f"{SIGNALS}: holds 4 rows but the manifest records 5"


def test_a_bundle_written_before_signals_existed_still_verifies() -> None:
    log, trail = f.event_log(3), f.audit_trail(2)
    document = _manifest(log, trail).model_dump()
    del document["files"][SIGNALS]
    del document["files"][CONFIG_HISTORY]
    older = Manifest.model_validate(document)
    digests = {name: d for name, d in SHA.items() if name not in {SIGNALS, CONFIG_HISTORY}}

    report = verify_bundle(older, digests, {EVENT_LOG: log, AUDIT_TRAIL: trail})

    assert report.ok
    assert older.format_version == 1


def test_the_sent_journal_is_listed_only_when_an_export_reported_it() -> None:
    base = {name: {"rows": 0, "sha256": digest} for name, digest in SHA.items()}
    chain = {"first_seq": None, "last_seq": None, "head": "0" * 64}
    base[EVENT_LOG]["chain"] = base[AUDIT_TRAIL]["chain"] = chain
    at = datetime.now(UTC)

    without = build_manifest(base, created_at=at, source={})
    journal = {SENT_JOURNAL: {"rows": 2, "sha256": "9" * 64}}
    with_journal = build_manifest({**base, **journal}, created_at=at, source={})

    assert SENT_JOURNAL not in without.files
    assert with_journal.files[SENT_JOURNAL].rows == 2


def test_the_config_history_is_required_and_checked_by_sha256_and_rows() -> None:
    """A new export must carry the rules config history; verify checks it like the signals."""
    log, trail = f.event_log(3), f.audit_trail(2)
    manifest = _manifest(log, trail)
    chains = {EVENT_LOG: log, AUDIT_TRAIL: trail}
    reports = {name: {"rows": 0, "sha256": digest} for name, digest in SHA.items()}
    del reports[CONFIG_HISTORY]

    same = verify_bundle(manifest, SHA, chains, {CONFIG_HISTORY: 2})
    changed = verify_bundle(manifest, {**SHA, CONFIG_HISTORY: "f" * 64}, chains)
    miscounted = verify_bundle(manifest, SHA, chains, {CONFIG_HISTORY: 1})
    missing = verify_bundle(manifest, {**SHA, CONFIG_HISTORY: None}, chains)

    assert same.ok
    assert manifest.files[CONFIG_HISTORY].chain is None
    assert changed.first_problem() == (
        f"{CONFIG_HISTORY}: sha256 differs from the manifest: the file was changed after export"
    )
    assert (
        miscounted.first_problem() == f"{CONFIG_HISTORY}: holds 1 rows but the manifest records 2"
    )
    assert missing.first_problem() == f"{CONFIG_HISTORY}: missing from the bundle"
    with pytest.raises(ExportError, match=CONFIG_HISTORY):
        build_manifest(reports, created_at=datetime.now(UTC), source={})


def test_a_bundle_written_before_the_config_history_existed_still_verifies() -> None:
    """Bundles exported before the history was kept list no such file and stay valid."""
    log, trail = f.event_log(3), f.audit_trail(2)
    document = _manifest(log, trail).model_dump()
    del document["files"][CONFIG_HISTORY]
    older = Manifest.model_validate(document)
    digests = {name: digest for name, digest in SHA.items() if name != CONFIG_HISTORY}

    report = verify_bundle(older, digests, {EVENT_LOG: log, AUDIT_TRAIL: trail})

    assert report.ok
