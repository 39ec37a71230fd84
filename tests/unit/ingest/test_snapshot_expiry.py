"""Audit snapshots of the log do not accumulate: only the newest `keep` stay on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.ingest.adapters.audit_export import AuditExports


async def _unused(directory: Path) -> dict[str, Any]:
    raise AssertionError(directory)


def test_only_the_newest_snapshots_are_kept(tmp_path: Path) -> None:
    exports = AuditExports(root=tmp_path, export=_unused)
    made = []
    for _ in range(12):
        snapshot_id, directory = exports.create()
        (directory / "event_log.parquet").write_bytes(b"x" * 10)
        made.append(snapshot_id)
    (tmp_path / "unrelated").mkdir()

    left = sorted(p.name for p in tmp_path.iterdir())

    assert left == sorted([*made[-5:], "unrelated"])
    assert exports.resolve(made[-1], "event_log.parquet") is not None
    assert exports.resolve(made[0], "event_log.parquet") is None
