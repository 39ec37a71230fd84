"""A partitioned deployment's rules files merged into one bundle file each (Parquet I/O).

Each rules partition owns its own signals chain and configuration history; a bundle holds
their union, every row tagged with its `partition`, so one file serves verify and replay.
Used by both the online and the offline export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from kit.files import file_sha256
from schemas.snapshots import FileReport
from services.audit.core.errors import ExportError
from services.audit.core.manifest import CONFIG_HISTORY, SIGNALS

#: Where an export gathers the partitions' copies inside the bundle directory (removed after).
STAGING: Final = ".rules-partitions"


def merge_partitions(target: Path, parts: list[tuple[int, Path]]) -> dict[str, FileReport]:
    """Write each rules file as the union of the partitions' copies, with a `partition` column.

    Rows keep their partition's file order, partition after partition: each partition's
    signals chain is then contiguous, and `audit verify` walks one chain per partition.
    """
    reports: dict[str, FileReport] = {}
    for name in (SIGNALS, CONFIG_HISTORY):
        tables = []
        for partition, directory in parts:
            table = pq.read_table(directory / name)
            column = pa.array([partition] * table.num_rows, type=pa.int32())
            tables.append(table.append_column("partition", column))
        merged = pa.concat_tables(tables, promote_options="default")
        if name == CONFIG_HISTORY:
            merged = _one_timeline(merged)
        pq.write_table(merged, target / name)
        reports[name] = {
            "path": str(target / name), "rows": merged.num_rows,
            "sha256": file_sha256(target / name),
        }  # fmt: skip
    return reports


def _one_timeline(history: pa.Table) -> pa.Table:
    """The partitions' configuration histories as one timeline, by first position.

    Each partition records a switch at its own position; the first partition to switch
    marks it for all. (A fact of another partition between that position and its own switch
    was folded under the previous configuration: a replay shows it as a difference.)
    """
    rows = sorted(history.to_pylist(), key=lambda row: (row["from_seq"], row["partition"]))
    kept: list[dict[str, Any]] = []
    for row in rows:
        if kept and row["config_sha256"] == kept[-1]["config_sha256"]:
            continue
        if kept and row["from_seq"] == kept[-1]["from_seq"]:
            msg = f"partitions disagree on the configuration at log position {row['from_seq']}"
            raise ExportError(msg)
        kept.append(row)
    return pa.Table.from_pylist(kept, schema=history.schema)
