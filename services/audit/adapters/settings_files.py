"""The files a replay and a reconcile are judged by: the trial configuration and the routing.

Each defaults to the file the live service reads (its environment variable; the trial
configuration else the packaged file, the routing has no default), so an auditor who names
none checks the system against what it ran with.
"""

from __future__ import annotations

import os
from pathlib import Path

from services.audit.core.errors import ConfigError, RoutingError
from services.audit.core.steps import config_from_text
from services.notify.published.model import Routing, RoutingFileError, parse_routing
from services.rules.published.model import TrialConfig
from services.rules.published.snapshot import DEFAULT_TRIAL_CONFIG

#: The trial file the rules service reads when SAFETYMON_TRIAL_CONFIG is unset.
PACKAGED_CONFIG = DEFAULT_TRIAL_CONFIG.name


def config_path(path: Path | None = None) -> Path:
    """The trial file a replay uses: `path`, else the live service's (env, then packaged)."""
    if path is not None:
        return path
    configured = os.environ.get("SAFETYMON_TRIAL_CONFIG")
    if configured:
        return Path(configured)
    return DEFAULT_TRIAL_CONFIG


def load_config(path: Path | None = None) -> TrialConfig:
    """Read and validate a versioned trial configuration file (TOML).

    Raises:
        ConfigError: the file is missing, not TOML, or not a valid configuration.

    """
    source = config_path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the trial configuration: {exc}") from exc
    return config_from_text(text, where=str(source))


def routing_path(path: Path | None = None) -> Path:
    """The routing file: `path`, else the one notify reads ($SAFETYMON_ROUTING).

    Raises:
        RoutingError: neither is given (notify has no default routing either, and a
            reconcile against a guessed routing would prove nothing).

    """
    if path is not None:
        return path
    configured = os.environ.get("SAFETYMON_ROUTING")
    if not configured:
        raise RoutingError("no routing file: give --routing or set SAFETYMON_ROUTING")
    return Path(configured)


def load_routing(path: Path | None = None) -> Routing:
    """Read and validate the routing file in force.

    Raises:
        RoutingError: the file cannot be read or is not a valid routing file.

    """
    source = routing_path(path)
    try:
        return parse_routing(source.read_text(encoding="utf-8"), source=str(source))
    except OSError as exc:
        raise RoutingError(f"{source}: cannot read the routing file: {exc}") from exc
    except RoutingFileError as exc:
        raise RoutingError(str(exc)) from exc
