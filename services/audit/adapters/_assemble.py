"""Put a bundle together on disk: an empty directory first, the manifest last (shell).

A bundle is complete only once manifest.json is written, after every file's sha256 has been
checked against what its service reported; on any failure the files written are removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kit.files import file_sha256
from schemas.snapshots import FileReport
from services.audit.adapters.bundle_reader import write_manifest
from services.audit.core.errors import ExportError
from services.audit.core.manifest import (
    ALL_FILES,
    MANIFEST_FILE,
    Manifest,
    build_manifest,
)


def prepare(out: Path) -> bool:
    """Make `out` ready for a new bundle; True when this call created it.

    Raises:
        ExportError: `out` is a file, or a directory that is not empty.

    """
    if out.exists():
        if not out.is_dir():
            raise ExportError(f"{out} exists and is not a directory")
        if any(out.iterdir()):
            raise ExportError(f"{out} is not empty: a bundle is never written over another")
        return False
    out.mkdir(parents=True)
    return True


def discard(out: Path, *, created: bool) -> None:
    """Remove what an export that failed wrote (only the bundle's own file names)."""
    for name in (*ALL_FILES, MANIFEST_FILE, f"{MANIFEST_FILE}.partial"):
        (out / name).unlink(missing_ok=True)
    if created and out.is_dir() and not any(out.iterdir()):
        out.rmdir()


def finish(out: Path, files: Mapping[str, FileReport], *, source: Mapping[str, Any]) -> Manifest:
    """Check each file's sha256 against its service's report, then write the manifest."""
    for name, report in files.items():
        path = out / name
        if not path.is_file():
            msg = (
                f"{name} is not in {out}: the service wrote it to {report.get('path')} on its "
                "own machine; run the export where that file system is visible"
            )
            raise ExportError(msg)
        actual = file_sha256(path)
        if actual != report.get("sha256"):
            msg = f"{name}: sha256 {actual} here but {report.get('sha256')} at the service"
            raise ExportError(msg)
    manifest = build_manifest(files, created_at=datetime.now(UTC), source=source)
    write_manifest(out, manifest)
    return manifest
