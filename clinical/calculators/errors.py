"""Errors of the clinical calculators (rules core): raised only for inputs no patient can have."""

from __future__ import annotations


class CalculatorError(ValueError):
    """Root of the calculators' errors; a caller bug or a malformed input, never a finding.

    Attributes:
        field: the input at fault (a parameter or attribute name), when there is one.

    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidInputError(CalculatorError):
    """A value that cannot be measured: negative, not finite, or out of its scale."""


class MissingInputError(CalculatorError):
    """A value the calculation needs (a ULN, a baseline, a sample) was not given."""


class UnknownTermError(CalculatorError):
    """A CTCAE term the grader does not support; the message lists the supported ones."""
