"""Error hierarchy of the rules service (core layer): what happens to a message depends on it."""

from __future__ import annotations


class RulesError(Exception):
    """Root of every error the rules service raises on purpose."""


class PermanentError(RulesError):
    """The input can never succeed: dead-letter it (and say so), never retry it."""


class TransientError(RulesError):
    """A dependency is unavailable right now: redeliver the batch later with backoff."""


class AlreadyProcessedError(RulesError):
    """A tracked input was committed before; a normal outcome of at-least-once delivery."""


class ConfigurationError(RulesError):
    """The trial configuration file is missing, unreadable or invalid: do not start."""
