"""The rules' snapshot: its files, the COPY that writes them, its subject, the packaged trial."""

from __future__ import annotations

from services.rules.adapters.audit_export import (
    CONFIG_HISTORY_FILE,
    SIGNALS_FILE,
    SNAPSHOT_FILES,
    copy_rules_snapshot,
    snapshot_subject,
)
from services.rules.adapters.trial_config import DEFAULT_TRIAL_CONFIG

__all__ = [
    "CONFIG_HISTORY_FILE",
    "DEFAULT_TRIAL_CONFIG",
    "SIGNALS_FILE",
    "SNAPSHOT_FILES",
    "copy_rules_snapshot",
    "snapshot_subject",
]
