"""Errors of the console core."""

from __future__ import annotations


class ConsoleError(Exception):
    """Root of the console's errors."""


class NotFoundError(ConsoleError, LookupError):
    """Nothing the viewer may see has this id: unknown and another site's read the same."""


class ForbiddenError(ConsoleError, PermissionError):
    """The viewer's role may not use this page or action."""
