"""The audit bundle's layout and manifest: file names, format version, what each file holds.

The manifest is the bundle's table of contents: per file its rows and sha256, and for the two
hash chains the first and last seq and the head hash the owning service reported when it
wrote the snapshot. Verification trusts the manifest only as far as its custody: a chain
head kept elsewhere (a signed report, `GET /v1/log/head`) is what proves it unaltered.

`signals.parquet` (the signals the live rules service raised) carries the rules' own hash
chain (`prev_hash`, `hash`; rows older than it have none), which `audit verify` checks; its
rows and sha256 are in the manifest, and `audit replay` compares it with the replay.
Bundles written before it existed are still format 1 and still read: a reader never
requires a file its manifest does not list. An offline export may add the notify sent
journal (`OPTIONAL_FILES`): SMTP acceptances notify recorded before its outbox commit.

`rules_config_history.parquet` (the trial configurations the rules service switched to, each
with the log seq it applied from and its exact TOML text, for an as-of replay) is likewise a
projection listed with rows and sha256, written by every new export, absent from older ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from schemas import GENESIS_HASH
from schemas.snapshots import FileReport
from services.audit.core.errors import ExportError

FORMAT: Final = "safetymon-audit-bundle"
FORMAT_VERSION: Final = 1
MANIFEST_FILE: Final = "manifest.json"
EVENT_LOG: Final = "event_log.parquet"
AUDIT_TRAIL: Final = "notify_audit_trail.parquet"
OUTBOX: Final = "notify_outbox.parquet"
SIGNALS: Final = "signals.parquet"
SENT_JOURNAL: Final = "notify_sent_journal.parquet"
CONFIG_HISTORY: Final = "rules_config_history.parquet"
#: The log heads ingest published on NATS (one JSON message a line), read by an online export
#: before the log's snapshot; `verify` compares them with the exported chain.
INGEST_HEADS: Final = "ingest_heads.jsonl"
#: Every export writes these.
BUNDLE_FILES: Final = (EVENT_LOG, AUDIT_TRAIL, OUTBOX, SIGNALS, CONFIG_HISTORY)
#: Written only when their source exists: the sent journal by the offline export, when notify
#: left one (a running notify settles its journal into the outbox within milliseconds).
OPTIONAL_FILES: Final = (SENT_JOURNAL, INGEST_HEADS)
ALL_FILES: Final = (*BUNDLE_FILES, *OPTIONAL_FILES)
#: How each chained file's hashed bytes are formed from its columns.
CHAINS: Final = {
    EVENT_LOG: "utf-8 bytes of the content column (canonical JSON)",
    AUDIT_TRAIL: "canonical_bytes(json.loads(wire)): sorted keys, no spaces, chain fields left out",
}
HASH_CHAIN: Final = {
    "algorithm": "hash_n = sha256(hash_{n-1} as lowercase hex ascii || hashed bytes of entry n)",
    "genesis": GENESIS_HASH,
}


class ChainSummary(BaseModel):
    """Where a chain starts and ends, as the owning service reported it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    first_seq: int | None
    last_seq: int | None
    head: str = Field(pattern=r"^[0-9a-f]{64}$")
    hashed: str


class FileEntry(BaseModel):
    """One file of the bundle."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    chain: ChainSummary | None = None


class Manifest(BaseModel):
    """manifest.json, format version 1."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["safetymon-audit-bundle"] = FORMAT
    format_version: Literal[1] = FORMAT_VERSION
    created_at: AwareDatetime
    hash_chain: dict[str, str] = Field(default_factory=lambda: dict(HASH_CHAIN))
    source: dict[str, Any] = Field(default_factory=dict)
    files: dict[str, FileEntry]


def build_manifest(
    files: Mapping[str, FileReport], *, created_at: datetime, source: Mapping[str, Any]
) -> Manifest:
    """Describe the snapshots the services reported (rows, sha256, chain summaries).

    Raises:
        ExportError: a bundle file is missing from the reports, or a report is malformed.

    """
    missing = [name for name in BUNDLE_FILES if name not in files]
    if missing:
        msg = f"the services reported no {', '.join(missing)}; a bundle needs {BUNDLE_FILES}"
        raise ExportError(msg)
    try:
        names = [*BUNDLE_FILES, *(name for name in OPTIONAL_FILES if name in files)]
        entries = {name: _entry(name, files[name]) for name in names}
        return Manifest(created_at=created_at, source=dict(source), files=entries)
    except (KeyError, TypeError, ValidationError) as exc:
        raise ExportError(f"a service's snapshot report is malformed: {exc}") from exc


def _entry(name: str, report: FileReport) -> FileEntry:
    chain = None
    if name in CHAINS:
        summary = report["chain"]
        chain = ChainSummary(
            first_seq=summary["first_seq"],
            last_seq=summary["last_seq"],
            head=summary["head"],
            hashed=CHAINS[name],
        )
    return FileEntry(rows=report["rows"], sha256=report["sha256"], chain=chain)
