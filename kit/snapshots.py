"""Audit snapshot requests over NATS request/reply, shared by the services that answer them.

A service that owns a DuckDB file writes its own Parquet snapshot when asked (one writer per
file: nobody else may open it). The request names an absolute directory inside the service's
data dir, or nothing (then a new directory under the service's export root is used); files
already there are never overwritten. Every request gets a reply: the export's report, or
`{"error": ...}`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from kit.logging import ErrorLog
from schemas.snapshots import SnapshotRefusal, SnapshotReport

if TYPE_CHECKING:
    from nats.aio.msg import Msg

#: Writes a service's snapshot files into the directory and reports them.
Export = Callable[[Path], Awaitable[SnapshotReport]]


class SnapshotRequestError(ValueError):
    """A snapshot request the service will not carry out; the reply says why."""


def new_snapshot_dir(root: Path) -> Path:
    """Make a new, empty directory `<root>/<UTC timestamp>/`."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    for attempt in range(1000):
        directory = root / (stamp if attempt == 0 else f"{stamp}-{attempt}")
        try:
            directory.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            continue
        return directory
    msg = f"no free snapshot directory under {root} for {stamp}"
    raise RuntimeError(msg)


def requested_directory(
    data: bytes, *, default_root: Path, files: Collection[str], owner: str
) -> Path:
    """Where a snapshot request asks the files to go; a new directory under the root if unset.

    Args:
        data: the request body.
        default_root: where a request without a directory gets a new one.
        files: the names the service writes; none of them may exist in the directory yet.
        owner: the service's name, for the reply.

    Raises:
        SnapshotRequestError: the request is not `{"directory": "/absolute/path"}` (or `{}`),
            the directory is outside the data dir (`default_root`'s parent) or goes through
            `..`, or it already holds one of `files`: files are never overwritten.

    """
    request = json.loads(data or b"{}")
    if not isinstance(request, dict):
        raise SnapshotRequestError('the request must be a JSON object: {"directory": "/abs/path"}')
    wanted = request.get("directory")
    if wanted is None:
        return new_snapshot_dir(default_root)
    if not isinstance(wanted, str) or not Path(wanted).is_absolute():
        raise SnapshotRequestError(f"directory must be an absolute path on {owner}'s machine")
    directory = Path(wanted)
    # Only inside the data dir (the export root's parent): a requester must not make the
    # service drop its data where others can read it. resolve() also defeats symlinks.
    data_dir = default_root.parent.resolve()
    if ".." in directory.parts or not directory.resolve().is_relative_to(data_dir):
        raise SnapshotRequestError(f"directory must be inside {owner}'s data directory")
    taken = [name for name in files if (directory / name).exists()]
    if taken:
        msg = f"{directory} already holds {', '.join(taken)}: nothing is overwritten"
        raise SnapshotRequestError(msg)
    return directory


def build_snapshot_responder(
    export: Export, *, default_root: Path, files: Collection[str], owner: str, log: ErrorLog
) -> Callable[[Msg], Awaitable[None]]:
    """Build the NATS callback answering snapshot requests; every request gets a reply."""

    async def respond(msg: Msg) -> None:
        try:
            directory = requested_directory(
                msg.data, default_root=default_root, files=files, owner=owner
            )
            reply: SnapshotReport | SnapshotRefusal = await export(directory)
        except (SnapshotRequestError, json.JSONDecodeError) as exc:  # the requester learns why
            reply = {"error": f"bad snapshot request: {exc}"}
        except Exception as exc:  # reported to the requester and logged, never swallowed
            log.error("audit_snapshot_failed", error=type(exc).__name__, exc_info=True)
            reply = {"error": f"snapshot failed: {type(exc).__name__}: {str(exc)[:300]}"}
        if msg.reply:
            await msg.respond(json.dumps(reply).encode("utf-8"))

    return respond


def sql_literal(path: Path) -> str:
    """A path as an SQL string literal (DuckDB's COPY takes no parameter for its target)."""
    return "'" + str(path).replace("'", "''") + "'"
