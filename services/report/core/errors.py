"""Errors of the report service (core layer): what the shell turns into exit codes."""

from __future__ import annotations


class ReportError(Exception):
    """Root of the report service's errors."""


class SourceError(ReportError):
    """The event log cannot be read (missing file, not a snapshot, service unreachable)."""


class ConfigurationError(ReportError):
    """The report configuration file is unreadable or invalid."""


class PublishError(ReportError):
    """The `ReportIssued` fact could not be published (NATS down, no confirmation)."""
