"""The source formats `safetymon ingest --format` knows (kept light: the CLI imports it early)."""

from __future__ import annotations

from enum import StrEnum


class SourceFormat(StrEnum):
    """What the files given to `safetymon ingest` are."""

    jsonl = "jsonl"
    sdtm = "sdtm"
    fhir = "fhir"
    csv = "csv"
