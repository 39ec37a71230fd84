"""Errors of the audit: what went wrong, said so that an auditor can act on it."""

from __future__ import annotations


class AuditError(Exception):
    """Root of the audit's errors."""


class ExportError(AuditError):
    """A bundle could not be exported; nothing partial is left looking like a bundle."""


class BundleError(AuditError):
    """A directory is not a readable bundle (no manifest, or one this version cannot read)."""


class BrokenBundleError(AuditError):
    """The bundle does not verify; nothing is replayed or reconciled from it."""


class ConfigError(AuditError):
    """The trial configuration for a replay cannot be read."""


class RuleVersionError(AuditError):
    """The rules engine cannot run the rule version asked for."""


class RoutingError(AuditError):
    """The routing file for a reconcile cannot be read."""


class UndecodableFactError(AuditError):
    """A log entry is not a fact the current schemas read; the replay cannot be faithful."""
