"""Read source files for the importers: SDTM `.xpt`/CSV tables, FHIR JSON, site CSV (I/O shell).

Everything here only reads; the mapping from records to events is pure and lives beside it.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyreadstat

#: File stems that hold an SDTM domain (the PHUSE update splits LB into chemistry,
#: haematology and urinalysis files).
_DOMAIN_STEMS = {
    "dm": "DM",
    "ae": "AE",
    "suppae": "SUPPAE",
    "ex": "EX",
    "lb": "LB",
    "lbch": "LB",
    "lbhe": "LB",
    "lbur": "LB",
    "vs": "VS",
    "ds": "DS",
}
_SUFFIXES = (".xpt", ".csv", ".csv.gz")


class SourceFileError(ValueError):
    """A source file that cannot be read (names the file and why)."""


def _stem(path: Path) -> str | None:
    name = path.name.lower()
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return None


def find_sdtm(paths: Iterable[Path]) -> dict[str, list[Path]]:
    """Domain -> its files, from directories or files; a domain found twice is an error."""
    found: dict[str, list[Path]] = {}
    owner: dict[str, Path] = {}
    for path in paths:
        if not path.exists():
            raise SourceFileError(f"{path}: no such file or folder")
        candidates = sorted(path.iterdir()) if path.is_dir() else [path]
        for candidate in candidates:
            stem = _stem(candidate)
            domain = _DOMAIN_STEMS.get(stem or "")
            if domain is None or stem is None:
                continue
            key = f"{domain}:{stem}"
            if key in owner and owner[key].parent != candidate.parent:
                msg = f"{stem} is in both {owner[key]} and {candidate}: pass one of them"
                raise SourceFileError(msg)
            if key in owner:  # the same table as .xpt and .csv in one folder: take the first
                continue
            owner[key] = candidate
            found.setdefault(domain, []).append(candidate)
    return found


def _text(value: Any) -> str:  # noqa: ANN401 - cells of a data frame are untyped
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def read_table(path: Path) -> list[dict[str, str]]:
    """Every row of a SAS transport or CSV file, each value as text ('' when missing).

    BRTHDTC (date of birth) is dropped on reading: it never reaches an event (no PHI).
    """
    try:
        if path.name.lower().endswith(".xpt"):
            names, columns = _read_xpt(path)
        else:
            names, columns = _read_csv(path)
    except (OSError, ValueError, csv.Error, pyreadstat.ReadstatError) as exc:
        raise SourceFileError(f"{path}: cannot be read ({exc})") from exc
    keep = [i for i, name in enumerate(names) if name != "BRTHDTC"]
    names = [names[i] for i in keep]
    rows = zip(*(columns[i] for i in keep), strict=True)
    return [dict(zip(names, values, strict=True)) for values in rows]


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    opener: Any = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = [name.strip().upper() for name in next(reader, [])]
        rows = [row for row in reader if any(cell.strip() for cell in row)]
    width = len(header)
    for number, row in enumerate(rows, start=2):
        if len(row) != width:
            raise ValueError(f"line {number} has {len(row)} cells, the header {width}")
    if not rows:
        return header, [[] for _ in header]
    return header, [list(column) for column in zip(*rows, strict=True)]


def _read_xpt(path: Path) -> tuple[list[str], list[list[str]]]:
    # pandas.read_sas can drop a row silently (data/README.md); pyreadstat reads them all.
    try:
        frame, _ = pyreadstat.read_xport(str(path))
    except UnicodeDecodeError:
        frame, _ = pyreadstat.read_xport(str(path), encoding="cp1252")
    names = [str(column).upper() for column in frame.columns]
    columns = [
        [_text(value) for value in frame[column].astype(object).tolist()]
        for column in frame.columns
    ]
    return names, columns


def read_toml(path: Path) -> dict[str, Any]:
    """A mapping file."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SourceFileError(f"{path}: not a readable TOML file ({exc})") from exc


def read_json(path: Path) -> Any:  # noqa: ANN401 - a FHIR resource is any JSON
    """A JSON file (one FHIR resource or Bundle)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceFileError(f"{path}: not a readable JSON file ({exc})") from exc
