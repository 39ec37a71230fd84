"""Trial configuration file loader (adapters layer): versioned TOML -> core `TrialConfig`.

The packaged default is `services/rules/trial_config/NCT01724398.v1.toml`; a deployment
points `SAFETYMON_TRIAL_CONFIG` at another version. Keys it leaves out take the RULES.md
defaults; unknown keys, wrong types and negative numbers stop the service at start-up.

`load_trial_source` also returns the file's identity (its exact text and sha256), which the
service records when a configuration takes effect, so an as-of replay can apply it.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Final

from services.rules.core.config import DEFAULT_CONFIG, TrialConfig
from services.rules.core.engine import parse_config
from services.rules.core.errors import ConfigurationError
from services.rules.ports import ConfigIdentity

DEFAULT_TRIAL_CONFIG: Final = (
    Path(__file__).resolve().parents[1] / "trial_config" / "NCT01724398.v1.toml"
)
#: What the built-in defaults are recorded as when the packaged file is missing: a file
#: naming only the trial and version, every other key left out, reads back as exactly
#: DEFAULT_CONFIG (keys left out take the RULES.md defaults), so a replay can rebuild it.
DEFAULT_TOML: Final = (
    f'[trial]\nid = "{DEFAULT_CONFIG.trial_id}"\nconfig_version = "{DEFAULT_CONFIG.version}"\n'
)


def load_trial_config(path: Path | None = None) -> TrialConfig:
    """Read and validate a trial configuration file (the packaged default when `path` is None).

    A file named explicitly must exist; when the packaged file is missing (a wheel built
    without data files), the built-in defaults, identical to v1, apply.

    Raises:
        ConfigurationError: the file cannot be read, is not TOML, or is not a valid config.

    """
    return load_trial_source(path)[0]


def load_trial_source(path: Path | None = None) -> tuple[TrialConfig, ConfigIdentity]:
    """Read and validate a trial configuration file, with the identity the service records.

    The identity's text is the file's exact text (sha256 over its bytes); for the built-in
    defaults it is `DEFAULT_TOML`.

    Raises:
        ConfigurationError: the file cannot be read, is not TOML, or is not a valid config.

    """
    if path is None and not DEFAULT_TRIAL_CONFIG.is_file():
        # Installed without its data files (pyproject lists no package data for the rules
        # service yet): the built-in defaults are v1's numbers (a unit test keeps them equal).
        return DEFAULT_CONFIG, identity_of(DEFAULT_CONFIG, DEFAULT_TOML)
    source = path or DEFAULT_TRIAL_CONFIG
    try:
        text = source.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigurationError(f"{source}: cannot read: {type(exc).__name__}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"{source}: not UTF-8 text: {exc.reason}") from exc
    config = parse_trial_config(text, source=str(source))
    return config, identity_of(config, text)


def parse_trial_config(text: str, *, source: str = "<trial config>") -> TrialConfig:
    """Validate the text of a trial configuration file.

    Raises:
        ConfigurationError: it is not TOML, or is not a valid config.

    """
    try:
        return parse_config(text)  # an unknown rule or version fails here, at start-up
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{source}: not valid TOML: {exc}") from exc
    except ValueError as exc:
        raise ConfigurationError(f"{source}: {exc}") from exc


def identity_of(config: TrialConfig, text: str) -> ConfigIdentity:
    """What the service records of the configuration `config` read from `text`."""
    return ConfigIdentity(
        version=config.version,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        toml=text,
        rule_versions=config.rule_versions,
    )
