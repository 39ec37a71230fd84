"""Errors of the audit tools: what went wrong, said so that an auditor can act on it."""

from __future__ import annotations


class AuditError(Exception):
    """Root of the audit tools' errors."""


class ExportError(AuditError):
    """A bundle could not be exported; nothing partial is left looking like a bundle."""


class BundleError(AuditError):
    """A directory is not a readable bundle (no manifest, or one this version cannot read)."""
