"""What the audit may rely on of the rules service; changing it is a contract change.

The audit's replay folds the log with the very step the live service runs, so it needs the
rules' pure fold, the trial configuration (its type and its parser), the participant state
and the rules a configuration runs (`rules_for`; `RuleSet` compiles them once for a fold);
its offline export writes the rules' snapshot files with the same COPY statements the
running service uses. Everything else in `services.rules` may change
without the audit noticing; a change here must keep `tests/unit/audit` and the golden replay
green, or be made together with the audit.
"""

from __future__ import annotations

from services.rules.adapters.audit_export import (
    CONFIG_HISTORY_FILE,
    SIGNALS_FILE,
    SNAPSHOT_FILES,
    copy_rules_snapshot,
    snapshot_subject,
)
from services.rules.adapters.trial_config import DEFAULT_TRIAL_CONFIG
from services.rules.core.config import TrialConfig
from services.rules.core.engine import VERSIONS, RuleSet, parse_config, rules_for
from services.rules.core.fold import apply, key_of
from services.rules.core.state import ParticipantState
from services.rules.core.state_codec import decode_state, encode_state

__all__ = [
    "CONFIG_HISTORY_FILE",
    "DEFAULT_TRIAL_CONFIG",
    "SIGNALS_FILE",
    "SNAPSHOT_FILES",
    "VERSIONS",
    "ParticipantState",
    "RuleSet",
    "TrialConfig",
    "apply",
    "copy_rules_snapshot",
    "decode_state",
    "encode_state",
    "key_of",
    "parse_config",
    "rules_for",
    "snapshot_subject",
]
