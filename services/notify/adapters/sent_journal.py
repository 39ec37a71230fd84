"""Sent journal (adapters layer): an append-only file of SMTP 250 replies, one JSON line each.

Why a file beside DuckDB: the outbox commit of "sent" goes through the DuckDB writer
thread and may queue behind other writes (10-50 ms under load); a kill -9 in that gap left
an accepted message "in doubt" and the restart sent it again. One `os.write` on an
O_APPEND descriptor takes microseconds and needs no await, and the page cache keeps the
bytes once the call returns, so a kill -9 of this process cannot lose them.

No fsync: it would cost milliseconds on every email, i.e. widen the very window the
journal exists to close. The journal only guards against the death of the process. After
a power loss or kernel crash the last entries may be gone; those rows are then resent as
before (same Message-ID, marked possible duplicate), which is the fallback for any
confirmation we do not hold. DuckDB's own commit (which fsyncs) follows milliseconds later
and is what outlives a power loss.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from uuid import UUID

from services.notify.ports import JournaledSend

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


class FileSentJournal:
    """SentJournal port over one append-only file in the notify data directory."""

    def __init__(self, path: Path, *, after_write: Callable[[], None] | None = None) -> None:
        self.path = path
        # Test-only seam (injected through main.Deps, off by default): runs right after a
        # successful write, so a test can kill the process exactly there.
        self._after_write = after_write
        self._fd: int | None = None
        self._index: dict[UUID, JournaledSend] = {}

    def open(self) -> None:
        """Open (creating if needed) the file and read what a previous process kept."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torn, entries = _read(self.path)
        self._index = {entry.notification_id: entry for entry in entries}
        self._fd = os.open(self.path, _FLAGS, 0o600)
        if torn:  # end the torn line, or the next entry would be glued to it and lost
            os.write(self._fd, b"\n")

    def close(self) -> None:
        """Close the descriptor; safe to call twice."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def record(self, sends: Sequence[JournaledSend]) -> bool:
        """Append one line per confirmation in a single write; False if the write failed."""
        if not sends:
            return True
        data = b"".join(_line(send) for send in sends)
        try:
            written = os.write(self._require(), data)
        except OSError:
            return False
        if written != len(data):  # a short write (disk full): the reader drops the torn line
            return False
        for send in sends:
            self._index[send.notification_id] = send
        if self._after_write is not None:
            self._after_write()
        return True

    def find(self, notification_id: UUID) -> JournaledSend | None:
        """The confirmation kept for this notification, if any."""
        return self._index.get(notification_id)

    def entries(self) -> list[JournaledSend]:
        """Every confirmation kept, in the order written."""
        return list(self._index.values())

    def compact(self, keep: Sequence[JournaledSend]) -> None:
        """Replace the file by one holding only `keep` (rename: never a half-written file)."""
        tmp = self.path.with_name(self.path.name + ".compact")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"".join(_line(send) for send in keep))
        finally:
            os.close(fd)
        # The dropped entries are committed in DuckDB already, so losing the new file's
        # content to a power cut costs at most an in-doubt resend of `keep`.
        tmp.replace(self.path)
        self.close()
        self._fd = os.open(self.path, _FLAGS, 0o600)
        self._index = {send.notification_id: send for send in keep}

    def _require(self) -> int:
        if self._fd is None:
            msg = f"sent journal {self.path} is not open"
            raise RuntimeError(msg)
        return self._fd


def read_entries(path: Path) -> list[JournaledSend]:
    """Read every confirmation a journal file holds, in the order written.

    Nothing is opened for writing: the offline audit export reads a stopped notify's journal.
    """
    return _read(path)[1]


def _line(send: JournaledSend) -> bytes:
    body = {
        "id": str(send.notification_id),
        "attempt": send.attempt,
        "reply": send.smtp_reply,
        "at": send.at.isoformat(),
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def _read(path: Path) -> tuple[bool, list[JournaledSend]]:
    """Return (whether the file ends in a torn line, the entries that parse)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return False, []
    found: list[JournaledSend] = []
    for line in raw.split(b"\n"):
        # A line cut short by a full disk or a crash mid-write is skipped: without it the
        # row is merely resent as in doubt, which is what happened before the journal.
        with contextlib.suppress(ValueError, KeyError, TypeError):
            body = json.loads(line)
            at = datetime.fromisoformat(body["at"])
            found.append(JournaledSend(UUID(body["id"]), int(body["attempt"]), body["reply"], at))
    return bool(raw) and not raw.endswith(b"\n"), found
