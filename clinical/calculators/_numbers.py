"""Exact decimal arithmetic shared by the calculators (rules core, private).

Published score vectors are rounded half up at .5 boundaries; binary floats can land on
either side of such a boundary, so every calculator works in `Decimal` under one fixed
context, whatever context the caller has set.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, localcontext
from functools import wraps
from typing import Final, ParamSpec, TypeAlias, TypeVar

from clinical.calculators.errors import InvalidInputError, MissingInputError

Numeric: TypeAlias = Decimal | int | float
_P = ParamSpec("_P")
_R = TypeVar("_R")
_CONTEXT: Final = Context(prec=28, rounding=ROUND_HALF_EVEN)
_ONE: Final = Decimal(1)


def exact(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run `func` under the calculators' fixed 28-digit decimal context."""

    @wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with localcontext(_CONTEXT):
            return func(*args, **kwargs)

    return wrapper


def to_decimal(value: Numeric, *, name: str) -> Decimal:
    """Convert a value exactly as written: a float goes through its shortest repr (1.1 -> 1.1)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float):
        raise InvalidInputError(f"{name} must be a number, not {value!r}", field=name)
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not number.is_finite():
        raise InvalidInputError(f"{name} must be finite, not {value}", field=name)
    return number


def non_negative(value: Numeric, *, name: str) -> Decimal:
    """Convert a concentration or count, which can never be below zero."""
    number = to_decimal(value, name=name)
    if number < 0:
        raise InvalidInputError(f"{name} must be ≥ 0, not {value}", field=name)
    return number


def required(value: Numeric | None, *, name: str) -> Decimal:
    """Convert a value the calculation cannot do without."""
    if value is None:
        raise MissingInputError(f"{name} is required", field=name)
    return to_decimal(value, name=name)


def optional(value: Numeric | None, *, name: str) -> Decimal | None:
    """Convert a value that may be absent."""
    return None if value is None else to_decimal(value, name=name)


def ln(value: Decimal) -> Decimal:
    """Natural logarithm, correctly rounded to 28 significant digits."""
    return value.ln(_CONTEXT)


def round_half_up(value: Decimal, step: str = "1") -> Decimal:
    """Round to a multiple of `step` ("1", "0.1"), .5 going away from zero."""
    return value.quantize(Decimal(step), rounding=ROUND_HALF_UP, context=_CONTEXT)


def clamp(value: Decimal, low: Decimal = _ONE, high: Decimal | None = None) -> Decimal:
    """Bound a value to [low, high] (high optional)."""
    bounded = max(value, low)
    return bounded if high is None else min(bounded, high)
