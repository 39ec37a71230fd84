"""Errors of the ingest core: a rejection names the field and the reason."""

from __future__ import annotations

from dataclasses import dataclass


class IngestError(Exception):
    """Root of the ingest service's errors."""


class TransientError(IngestError):
    """A dependency (DuckDB, NATS) is unavailable; the caller may retry."""


class PermanentError(IngestError):
    """The input can never succeed as sent."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One reason an event was rejected: the dotted field path and why."""

    field: str
    reason: str


class UnknownUnitError(PermanentError):
    """A unit that is not recognised, or not convertible to the analyte's canonical unit."""


class OutOfSiteError(IngestError):
    """A per-site submitter sent facts about another site's participants; nothing was stored."""

    def __init__(self, items: tuple[tuple[int, FieldError], ...], *, site: str) -> None:
        super().__init__(f"{len(items)} item(s) lie outside site {site!r}")
        self.items = items
        self.site = site


class LogIntegrityError(IngestError):
    """The log's chain is broken or disagrees with a head published outside the file.

    Ingest refuses to start on it: appending to a broken chain would bury the break under
    new entries that verify from there on.
    """
