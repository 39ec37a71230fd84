"""The `safetymon ingest --format sdtm|fhir|csv` path: pick the mapper, run the import (shell)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from safetymon.importers._types import Outcome
from safetymon.importers.files import SourceFileError
from safetymon.importers.formats import SourceFormat
from safetymon.importers.run import csv_outcomes, fhir_outcomes, run_import, sdtm_outcomes
from safetymon.importers.sdtm import StudyMappingError
from safetymon.ingest_files import ingest_client


def _outcomes(
    source_format: SourceFormat, paths: Sequence[Path], mapping: Path | None
) -> tuple[Iterator[Outcome], int]:
    if source_format is SourceFormat.sdtm:
        if mapping is None:
            msg = "--format sdtm needs --mapping STUDY.toml: which ARMCD is which of our arms"
            raise SystemExit(msg)
        return sdtm_outcomes(paths, mapping)
    if source_format is SourceFormat.fhir:
        return fhir_outcomes(paths, mapping)
    if mapping is None:
        msg = "--format csv needs --mapping MAP.toml: which column is which (see README)"
        raise SystemExit(msg)
    return csv_outcomes(paths, mapping)


def import_files(  # noqa: PLR0913 - the command's options, passed through
    source_format: SourceFormat,
    paths: Sequence[Path],
    *,
    mapping: Path | None,
    base_url: str,
    batch: int,
    token: str | None,
    reasons: Path | None,
    console: Console,
) -> dict[str, Any]:
    """Import the files and return the summary; a bad file or mapping exits with why."""
    try:
        outcomes, total = _outcomes(source_format, paths, mapping)
    except (SourceFileError, StudyMappingError) as exc:
        raise SystemExit(str(exc)) from exc
    reasons_path = reasons or Path(f"{source_format.value}-import-reasons.jsonl")
    with ingest_client(base_url, token) as client:
        return run_import(
            outcomes,
            total=total,
            client=client,
            batch=batch,
            reasons=reasons_path,
            console=console,
        )
