"""Trial configuration file loader (adapters layer): versioned TOML -> core `TrialConfig`.

The packaged default is `services/rules/trial_config/NCT01724398.v1.toml`; a deployment
points `SAFETYMON_TRIAL_CONFIG` at another version. Keys it leaves out take the RULES.md
defaults; unknown keys, wrong types and negative numbers stop the service at start-up.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Final

from services.rules.core.config import DEFAULT_CONFIG, TrialConfig
from services.rules.core.engine import catalogue
from services.rules.core.errors import ConfigurationError

DEFAULT_TRIAL_CONFIG: Final = (
    Path(__file__).resolve().parents[1] / "trial_config" / "NCT01724398.v1.toml"
)


def load_trial_config(path: Path | None = None) -> TrialConfig:
    """Read and validate a trial configuration file (the packaged default when `path` is None).

    A file named explicitly must exist; when the packaged file is missing (a wheel built
    without data files), the built-in defaults, identical to v1, apply.

    Raises:
        ConfigurationError: the file cannot be read, is not TOML, or is not a valid config.

    """
    if path is None and not DEFAULT_TRIAL_CONFIG.is_file():
        # Installed without its data files (pyproject lists no package data for the rules
        # service yet): the built-in defaults are v1's numbers (a unit test keeps them equal).
        return DEFAULT_CONFIG
    source = path or DEFAULT_TRIAL_CONFIG
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"{source}: cannot read: {type(exc).__name__}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{source}: not valid TOML: {exc}") from exc
    try:
        config = TrialConfig.from_mapping(data)
        catalogue(config)  # an unknown rule or version in [rule_versions] fails at start-up
    except ValueError as exc:
        raise ConfigurationError(f"{source}: {exc}") from exc
    return config
