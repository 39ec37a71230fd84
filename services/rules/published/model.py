"""The rules' pure fold, configuration, state and rule sets, as the audit's replay uses them."""

from __future__ import annotations

from services.rules.core.config import TrialConfig
from services.rules.core.engine import VERSIONS, RuleSet, parse_config, rules_for
from services.rules.core.fold import apply, key_of
from services.rules.core.state import ParticipantState
from services.rules.core.state_codec import decode_state, encode_state

__all__ = [
    "VERSIONS",
    "ParticipantState",
    "RuleSet",
    "TrialConfig",
    "apply",
    "decode_state",
    "encode_state",
    "key_of",
    "parse_config",
    "rules_for",
]
