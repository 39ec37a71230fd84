"""Write the report's tables as CSV and Parquet, byte for byte reproducible (adapters layer).

CSV: header of column names, LF line ends, empty for null, `true`/`false`, floats in
Python's shortest round-trip form, and text cells a spreadsheet would run as a formula
prefixed with a quote (kit/csv_safe.py; an AE term is free text). Parquet: an explicit Arrow
schema per column kind, zstd, no pandas metadata, and key-value metadata holding only the
report's inputs (log position, chain head, as-of, configuration version): nothing that
depends on when it was written.
`report.json` lists the files and their SHA-256.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from kit.csv_safe import csv_text
from kit.files import file_sha256
from services.report.core.build import iso
from services.report.core.model import Cell, Kind, Report, Table

MANIFEST: Final = "report.json"
_ARROW: Final[dict[Kind, pa.DataType]] = {
    "str": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
}


def _csv_cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return csv_text(value)
    return repr(value) if isinstance(value, float) else str(value)


def write_csv(table: Table, path: Path) -> None:
    """Write one table as CSV."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([c.name for c in table.columns])
        writer.writerows([_csv_cell(v) for v in row] for row in table.rows)


def write_parquet(table: Table, path: Path, metadata: dict[str, str]) -> None:
    """Write one table as Parquet with a fixed schema and reproducible metadata."""
    schema = pa.schema(
        [pa.field(c.name, _ARROW[c.kind]) for c in table.columns],
        metadata={k.encode(): v.encode() for k, v in sorted(metadata.items())},
    )
    columns = list(zip(*table.rows, strict=True)) if table.rows else [() for _ in table.columns]
    arrow = pa.table(
        [
            pa.array(list(values), type=field.type)
            for values, field in zip(columns, schema, strict=True)
        ],
        schema=schema,
    )
    pq.write_table(arrow, path, compression="zstd", write_statistics=True)


def write_tables(report: Report, directory: Path) -> dict[str, str]:
    """Write every table as `<name>.csv` and `<name>.parquet`; return name -> SHA-256."""
    directory.mkdir(parents=True, exist_ok=True)
    metadata = {
        "safetymon.report": "dsmb",
        "trial_id": report.trial_id,
        "as_of": iso(report.position.as_of) or "",
        "log_position": str(report.position.seq),
        "chain_head": report.position.chain_head,
        "config_version": report.config_version,
    }
    digests: dict[str, str] = {}
    for table in report.tables:
        for suffix in ("csv", "parquet"):
            path = directory / f"{table.name}.{suffix}"
            if suffix == "csv":
                write_csv(table, path)
            else:
                write_parquet(table, path, {**metadata, "table": table.name})
            digests[path.name] = file_sha256(path)
    return digests


def write_manifest(report: Report, directory: Path, digests: dict[str, str]) -> Path:
    """Write `report.json`: what the report was built from and the SHA-256 of each table file."""
    document = {
        "report": "dsmb",
        "trial_id": report.trial_id,
        "as_of": iso(report.position.as_of),
        "log_position": report.position.seq,
        "chain_head": report.position.chain_head,
        "config_version": report.config_version,
        "stops_triggered": sorted(f"{s.rule}/{s.arm}" for s in report.stops if s.triggered),
        "files": dict(sorted(digests.items())),
    }
    path = directory / MANIFEST
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
