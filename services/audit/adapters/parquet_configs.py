"""Read a bundle's configuration history (`rules_config_history.parquet`) as a timeline.

Each row is a configuration's exact TOML text with its sha256 and the log position it
applied from; a text that does not match its sha256, or names another version than its row,
is refused rather than replayed with.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.parquet as pq

from services.audit.core.errors import BundleError, ConfigError
from services.audit.core.manifest import CONFIG_HISTORY
from services.audit.core.steps import config_from_text
from services.audit.core.timeline import Activation, Timeline


def read_timeline(bundle: Path) -> Timeline | None:
    """The bundle's configuration history, or None when it holds none (an older bundle).

    Raises:
        BundleError: the history cannot be read, a file text does not match its recorded
            sha256, or a recorded configuration is not valid.

    """
    path = bundle / CONFIG_HISTORY
    if not path.is_file():
        return None
    try:
        rows = pq.read_table(
            path, columns=["from_seq", "config_version", "config_sha256", "config_toml"]
        ).to_pylist()
    except (OSError, ValueError, KeyError) as exc:  # pyarrow raises ArrowInvalid (ValueError)
        raise BundleError(f"{CONFIG_HISTORY}: cannot read: {exc}") from exc
    if not rows:
        return None
    activations = []
    for row in sorted(rows, key=lambda r: r["from_seq"]):
        where = f"{CONFIG_HISTORY} from seq {row['from_seq']}"
        text = str(row["config_toml"])
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != row["config_sha256"]:
            raise BundleError(f"{where}: the configuration text does not match its sha256")
        try:
            config = config_from_text(text, where=where)
        except ConfigError as exc:
            raise BundleError(str(exc)) from exc
        if config.version != row["config_version"]:
            msg = f"{where}: the text is {config.version}, the row says {row['config_version']}"
            raise BundleError(msg)
        activations.append(Activation(int(row["from_seq"]), config, str(row["config_sha256"])))
    return Timeline(tuple(activations), recorded=True)
