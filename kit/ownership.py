"""Who folds which partition: file locks as the ownership record, and a pure takeover plan.

A rules worker owns a partition while it holds an exclusive `flock` on the partition's lock
file, taken before it opens the partition's DuckDB file and released only after it has
closed it. The kernel drops the lock when the holder dies, even by kill -9, so a dead
worker's partitions become free at once and nothing else has to notice a crash. Each
worker also holds a lock on its own worker file for its whole life: a free worker file is
how the others learn that the worker is down (`alive`).

The locks need one filesystem with POSIX locks shared by the workers: one machine, or a
network filesystem that honours `flock` (NFSv4 does); see the README's "Rules workers".
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path


class FileLock:
    """An exclusive, non-blocking lock on one file, held until `release()` or process exit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True when held now."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        """Give the lock up (closing the descriptor releases it)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def locked_by_another(path: Path) -> bool:
    """Whether some other holder has `path` locked right now (probed, never kept)."""
    probe = FileLock(path)
    if probe.try_acquire():
        probe.release()
        return False
    return True


def worker_lock(directory: Path, worker: int) -> Path:
    """The lock file a live worker holds for its whole life."""
    return directory / f"worker-{worker}.lock"


def partition_lock(directory: Path, partition: int, partitions: int) -> Path:
    """The lock file the owner of a partition holds while its DuckDB file is open."""
    return directory / f"partition-{partition}-of-{partitions}.lock"


def workers_up(directory: Path, *, me: int) -> frozenset[int]:
    """Workers whose lock is held now (this one included), found by their lock files."""
    up = {me}
    for path in directory.glob("worker-*.lock"):
        number = path.stem.removeprefix("worker-")
        if number.isdigit() and int(number) != me and locked_by_another(path):
            up.add(int(number))
    return frozenset(up)


@dataclass(frozen=True, slots=True)
class Plan:
    """What one worker should do now: partitions to try to claim, partitions to hand back."""

    claim: tuple[int, ...]
    release: tuple[int, ...]


def assignment(alive: frozenset[int], partitions: int) -> dict[int, int]:
    """Partition -> worker: the live workers in id order, dealt round-robin.

    With every worker up this is the static assignment (partition k to the (k mod W)-th
    worker); when one is down its partitions are dealt over the rest; when one joins, the
    deal includes it.
    """
    order = sorted(alive)
    return {partition: order[partition % len(order)] for partition in range(partitions)}


def plan(*, worker: int, alive: frozenset[int], partitions: int, held: frozenset[int]) -> Plan:
    """Claim the partitions the assignment gives this worker; hand back the others.

    `alive` are the workers counted up (the caller keeps a worker that just vanished in it
    for one more look, so a quick restart moves nothing). Claims are attempts: the
    partition's lock decides, and the previous owner lets go only once it has closed the
    partition's file, so two workers never fold the same partition at once.
    """
    owners = assignment(alive | {worker}, partitions)
    mine = frozenset(p for p, owner in owners.items() if owner == worker)
    return Plan(tuple(sorted(mine - held)), tuple(sorted(held - mine)))
