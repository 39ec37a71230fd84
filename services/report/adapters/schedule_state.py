"""Keep the scheduler's state in a small JSON file beside the reports (adapters layer).

Written atomically (temporary file, then rename) after the reports of a tick are written and
announced, so a crash repeats a tick's reports (same ids, dropped as duplicates by JetStream)
rather than skipping them.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from services.report.core.errors import ConfigurationError
from services.report.core.schedule import ScheduleState


def load_state(path: Path) -> ScheduleState:
    """Read the state, or the empty state when the file does not exist yet."""
    if not path.is_file():
        return ScheduleState()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        last = data["last_periodic"]
        return ScheduleState(
            last_periodic=None if last is None else datetime.fromisoformat(last),
            announced=frozenset(data["announced"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"{path}: unreadable scheduler state: {exc!r}") from exc


def save_state(path: Path, state: ScheduleState) -> None:
    """Write the state atomically."""
    document = {
        "last_periodic": None if state.last_periodic is None else state.last_periodic.isoformat(),
        "announced": sorted(state.announced),
    }
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(path)
