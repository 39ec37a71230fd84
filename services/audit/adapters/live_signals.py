"""Read the live signals of a bundle (`signals.parquet`) and compare them with a replay.

Each live signal is located on the bundle's log by its cause (`cause_event_id`), so the
pure comparison (`core/compare.py`) can tell which live signals the replay covered.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from services.audit.core.compare import LiveComparison, LiveSignal, compare
from services.audit.core.manifest import EVENT_LOG, SIGNALS
from services.audit.core.replayed import ReplayResult

_LIVE_COLUMNS: Final = ["signal_id", "body", "cause_event_id", "rule_id", "participant_id"]


def compare_bundle(bundle: Path, result: ReplayResult) -> LiveComparison | None:
    """Compare the bundle's live signals with a replay of it; None when it holds none."""
    path = bundle / SIGNALS
    if not path.is_file():
        return None  # a bundle exported before signals were part of it
    return compare(read_live_signals(path, log=bundle / EVENT_LOG), result)


def read_live_signals(path: Path, *, log: Path) -> tuple[LiveSignal, ...]:
    """The live signals in file order, each with its cause located on the log."""
    table = pq.read_table(path, columns=_LIVE_COLUMNS)
    causes = _locate(log, table.column("cause_event_id"))
    rows = zip(*(table.column(name).to_pylist() for name in _LIVE_COLUMNS), strict=True)
    nowhere = (None, None)
    return tuple(
        LiveSignal(str(sid), str(body).encode("utf-8"), cause, rule, who,
                   *causes.get(cause, nowhere))
        for sid, body, cause, rule, who in rows
    )  # fmt: skip


def _locate(log: Path, causes: pa.ChunkedArray) -> dict[str, tuple[int, datetime]]:
    """Log position and recorded time of each cause id found in the log."""
    wanted = pc.unique(causes.drop_null())
    table = pq.read_table(log, columns=["seq", "event_id", "recorded_at"])
    found = table.filter(pc.is_in(table.column("event_id"), value_set=wanted.cast(pa.string())))
    return {
        str(event_id): (int(seq), recorded_at)
        for seq, event_id, recorded_at in zip(
            *(found.column(name).to_pylist() for name in ("seq", "event_id", "recorded_at")),
            strict=True,
        )
    }
