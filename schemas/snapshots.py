"""The report a service gives of an audit snapshot it wrote: one shape for both sides.

A service that owns a DuckDB file writes its own Parquet snapshot when asked (over NATS
request/reply, ingest over HTTP, or an offline export's read-only copy) and describes it
with a `SnapshotReport`; the audit export checks each file against its `FileReport` and
builds the bundle's manifest from them. They travel as JSON, so they are TypedDicts (the
dicts the services build are what is sent, key for key), not models. A reader in another
process checks every key where it uses it: a report is never trusted to be complete.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class ChainSpan(TypedDict):
    """Where a chain a snapshot file holds starts and ends, as its service reports it."""

    first_seq: int | None
    last_seq: int | None
    head: str


class FileReport(TypedDict, total=False):
    """One file of a snapshot: where it is, its rows, its sha256 (once hashed)."""

    path: str  # where the service wrote it (on its own machine or a shared volume)
    rows: int
    sha256: str  # added once the file is hashed, off the DuckDB writer thread
    chain: ChainSpan  # the chained files only
    download: str  # ingest: the URL path the file is served under


class SnapshotReport(TypedDict):
    """A service's answer to a snapshot request: its files by name."""

    service: str
    #: A partitioned rules deployment: the partition whose owner answered.
    partition: NotRequired[int]
    directory: str
    files: dict[str, FileReport]


class SnapshotRefusal(TypedDict):
    """The answer to a snapshot request the service did not carry out, saying why."""

    error: str
