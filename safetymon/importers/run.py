"""Run an import: read the source files, map them (pure), post batches to ingest (I/O shell).

The summary counts source records: `read` = `accepted` + `duplicate` + `rejected` + `skipped`.
Every record that did not become an event is one or more lines of the reasons file, a JSON Lines
file of `{"source_id", "status", "field", "reason"}`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from safetymon.importers._types import Mapped, Outcome, Unmapped, without_conflicts
from safetymon.importers.csv_map import map_rows, mapping_from_toml
from safetymon.importers.fhir import count_resources, map_resource, settings_from_toml
from safetymon.importers.files import SourceFileError, find_sdtm, read_json, read_table, read_toml
from safetymon.importers.sdtm import DOMAINS, map_study, record_count, study_from_toml
from safetymon.ingest_files import post_events


def sdtm_outcomes(paths: Sequence[Path], mapping: Path) -> tuple[Iterator[Outcome], int]:
    """The outcomes of an SDTM import and how many records it reads."""
    study = study_from_toml(read_toml(mapping))
    found = find_sdtm(paths)
    if not set(found) & set(DOMAINS):
        names = ", ".join(str(p) for p in paths)
        msg = f"no SDTM domain ({', '.join(DOMAINS)}) as .xpt or .csv in {names}"
        raise SystemExit(msg)
    domains = {name: [row for p in files for row in read_table(p)] for name, files in found.items()}
    return map_study(domains, study), record_count(domains)


def fhir_outcomes(paths: Sequence[Path], mapping: Path | None) -> tuple[Iterator[Outcome], int]:
    """The outcomes of a FHIR import (JSON files, or folders of them) and how many resources.

    The count is of resources (a Bundle's entries each, an unreadable file as one), the unit
    the outcomes come in: the progress bar advances per outcome (it counted files and ended
    at 32/30). The files are read once, up front, as the CSV and SDTM importers read theirs.
    """
    settings = settings_from_toml(read_toml(mapping) if mapping else {})
    files = sorted(f for p in paths for f in (p.glob("*.json") if p.is_dir() else [p]))
    if not files:
        raise SourceFileError(f"no .json file in {', '.join(str(p) for p in paths)}")
    read: list[tuple[str, Any]] = []
    for path in files:
        try:
            read.append((path.name, read_json(path)))
        except SourceFileError as exc:  # one bad file is a reason, not the end of the run
            read.append((path.name, exc))

    def outcomes() -> Iterator[Outcome]:
        for name, resource in read:
            if isinstance(resource, SourceFileError):
                yield Unmapped(name, "(file)", str(resource))
            else:
                yield from map_resource(resource, settings, origin=name)

    total = sum(
        1 if isinstance(resource, SourceFileError) else count_resources(resource)
        for _, resource in read
    )
    return without_conflicts(outcomes()), total


def csv_outcomes(paths: Sequence[Path], mapping: Path) -> tuple[Iterator[Outcome], int]:
    """The outcomes of a site CSV import and how many rows it reads."""
    parsed = mapping_from_toml(read_toml(mapping))
    tables = [(path, read_table(path)) for path in paths]

    def outcomes() -> Iterator[Outcome]:
        for path, rows in tables:
            yield from map_rows(rows, parsed, origin=path.name)

    # A wide lab sheet makes one record of each filled result cell, a long one of each row.
    columns = [r.column for r in parsed.results]
    total = sum(
        sum(1 for row in rows for c in columns if row.get(c, "").strip()) if columns else len(rows)
        for _, rows in tables
    )
    return outcomes(), total


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def run_import(
    outcomes: Iterable[Outcome],
    *,
    total: int,
    client: httpx.Client,
    batch: int,
    reasons: Path,
    console: Console,
) -> dict[str, Any]:
    """Post every mapped record in batches; write the reasons file; return the summary."""
    summary: dict[str, Any] = {
        "read": 0,
        "accepted": 0,
        "duplicate": 0,
        "rejected": 0,
        "skipped": 0,
    }
    by_tag: dict[str, dict[str, int]] = {}
    started = time.perf_counter()
    iterator = iter(outcomes)
    reasons.parent.mkdir(parents=True, exist_ok=True)
    # Map the next batch while ingest works on this one: the mapping is CPU, the POST waits.
    with (
        reasons.open("w", encoding="utf-8") as out,
        _progress(console) as bar,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-map") as mapper,
    ):
        task = bar.add_task("importing", total=total)
        upcoming = mapper.submit(lambda: list(islice(iterator, batch)))
        while chunk := upcoming.result():
            upcoming = mapper.submit(lambda: list(islice(iterator, batch)))
            _import_chunk(chunk, client=client, summary=summary, by_tag=by_tag, out=out)
            bar.advance(task, len(chunk))
    summary["seconds"] = round(time.perf_counter() - started, 3)
    summary["by_tag"] = dict(sorted(by_tag.items()))
    summary["reasons_file"] = str(reasons)
    return summary


def _import_chunk(
    chunk: list[Outcome],
    *,
    client: httpx.Client,
    summary: dict[str, Any],
    by_tag: dict[str, dict[str, int]],
    out: TextIO,
) -> None:
    summary["read"] += len(chunk)
    mapped = [o for o in chunk if isinstance(o, Mapped)]
    for outcome in chunk:
        if isinstance(outcome, Unmapped):
            summary[outcome.status] += 1
            _reason(out, outcome.record_id, outcome.status, outcome.field, outcome.reason)
    if not mapped:
        return
    results = post_events(client, [m.submission for m in mapped])
    for result in results:
        record, status = mapped[result["index"]], result["status"]
        summary[status] += 1
        if status == "rejected":
            for error in result["errors"]:
                _reason(out, record.record_id, "rejected", error["field"], error["reason"])
            continue
        counts = by_tag.setdefault(record.tag, {"accepted": 0, "duplicate": 0})
        counts[status] += 1


def _reason(out: TextIO, source_id: str, status: str, field: str, reason: str) -> None:
    line = {"source_id": source_id, "status": status, "field": field, "reason": reason}
    out.write(json.dumps(line, ensure_ascii=False) + "\n")
