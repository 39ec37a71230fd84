"""What the audit's use-cases need from the outside (Protocols), and what they are handed.

The use-cases (`app.py`) read a verified bundle through these: the replay of its log, its
recorded configuration history, notify's trail and sent journal in it, and the trial
configuration and routing files the auditor names. `adapters/local.py` implements them over
a bundle directory on this machine's disk; a test may hand in its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypedDict

from services.audit.core.journal import JournaledSent
from services.audit.core.manifest import Manifest
from services.audit.core.replayed import ReplayResult
from services.audit.core.timeline import Timeline
from services.audit.core.trail import TrailEntry
from services.notify.published.model import Routing
from services.rules.published.model import TrialConfig


class Described(TypedDict, total=False):
    """Where a bundle came from, as the answers say it: a directory, or a live snapshot."""

    bundle: str
    #: The snapshot's manifest `source` (how each service was reached).
    live: dict[str, object]


@dataclass(frozen=True, slots=True)
class Opened:
    """A verified bundle ready to query, and how to describe where it came from."""

    path: Path
    manifest: Manifest
    described: Described


class Replayer(Protocol):
    """Folds a bundle's log as of a recorded time with the configurations given."""

    def __call__(
        self,
        bundle: Path,
        *,
        as_of: datetime | None,
        config: TrialConfig | Timeline,
        workers: int | None = None,
        checkpoints: Path | None = None,
    ) -> ReplayResult:
        """The replay of `bundle`'s log (`checkpoints`: a directory to start from and add to)."""
        ...


class BundleRecords(Protocol):
    """The records a bundle holds beside its log, read as typed values."""

    def timeline(self, bundle: Path) -> Timeline | None:
        """The configuration history; None when the bundle holds none (an older bundle)."""
        ...

    def trail(self, bundle: Path, *, as_of: datetime | None) -> tuple[TrailEntry, ...]:
        """Notify's audit trail, recorded at or before `as_of`."""
        ...

    def journal(self, bundle: Path, *, as_of: datetime | None) -> tuple[JournaledSent, ...]:
        """Notify's sent journal (an offline bundle's), accepted at or before `as_of`."""
        ...


class JudgedBy(Protocol):
    """The files a replay and a reconcile are judged by (None: the ones the services read)."""

    def trial_config(self, path: Path | None) -> TrialConfig:
        """The trial configuration in `path`, or the one the rules service reads."""
        ...

    def routing(self, path: Path | None) -> Routing:
        """The routing file in `path`, or the one notify reads."""
        ...
