"""The ports over a bundle directory on this machine's disk, and the queries bound to them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from services.audit.adapters.parquet_configs import read_timeline
from services.audit.adapters.parquet_trail import read_journal, read_trail
from services.audit.adapters.replayer import replay_bundle
from services.audit.adapters.settings_files import load_config, load_routing
from services.audit.app import AuditQueries
from services.audit.core.journal import JournaledSent
from services.audit.core.timeline import Timeline
from services.audit.core.trail import TrailEntry
from services.notify.published.model import Routing
from services.rules.published.model import TrialConfig


class ParquetRecords:
    """A bundle's configuration history, trail and sent journal, read from its Parquet files."""

    def timeline(self, bundle: Path) -> Timeline | None:
        """See `ports.BundleRecords.timeline`."""
        return read_timeline(bundle)

    def trail(self, bundle: Path, *, as_of: datetime | None) -> tuple[TrailEntry, ...]:
        """See `ports.BundleRecords.trail`."""
        return read_trail(bundle, as_of=as_of)

    def journal(self, bundle: Path, *, as_of: datetime | None) -> tuple[JournaledSent, ...]:
        """See `ports.BundleRecords.journal`."""
        return read_journal(bundle, as_of=as_of)


class SettingsFiles:
    """The trial configuration and routing files, by default those the services read."""

    def trial_config(self, path: Path | None) -> TrialConfig:
        """See `ports.JudgedBy.trial_config`."""
        return load_config(path)

    def routing(self, path: Path | None) -> Routing:
        """See `ports.JudgedBy.routing`."""
        return load_routing(path)


def local_queries() -> AuditQueries:
    """The use-cases over bundles on this machine's disk, replayed in local processes."""
    return AuditQueries(replayer=replay_bundle, records=ParquetRecords(), judged_by=SettingsFiles())
