"""Which AE terms an email may carry: controlled (coded) terms only, never verbatim free text.

A site types the AE term; it can hold anything ("Pneumonia for <name> MRN <number>"). Rules
quote it in a signal's reason and values, and a reason is what an email shows. So notify
shows a term only when it is one of the controlled terms below (normalised as the rules and
the DSMB report normalise: lower case, single spaces, US spelling) and otherwise replaces it
with `WITHHELD`; the safety officer opens the record in the EDC by its evidence event ids.

`CONTROLLED_TERMS` is the product's own term list, from the clinical kernel (`clinical`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from clinical.ae_terms import BODY_SYSTEMS
from clinical.calculators import supported_terms
from clinical.codes import normalise_term

__all__ = [
    "CONTROLLED_TERMS",
    "TERM_VALUES",
    "WITHHELD",
    "is_controlled",
    "normalise_term",
    "redact_reason",
    "redact_value",
]

WITHHELD: Final = "[uncoded AE term withheld]"
#: Signal value names that carry a reported term.
TERM_VALUES: Final = frozenset({"term"})
#: A term as the rules quote it in a reason: 'term'.
_QUOTED: Final = re.compile(r"'([^'\n]*)'")
#: The product's own term list: the MedDRA preferred terms the rules and the DSMB report
#: classify by, and the CTCAE v5.0 lab terms the rules grade.
CONTROLLED_TERMS: Final = frozenset(BODY_SYSTEMS) | {normalise_term(t) for t in supported_terms()}


def is_controlled(term: str) -> bool:
    """True when `term` is a controlled term (after normalisation)."""
    return normalise_term(term) in CONTROLLED_TERMS


def redact_reason(reason: str, values: Mapping[str, object]) -> str:
    """The reason with every uncontrolled term replaced by `WITHHELD`.

    The reported term named in the values is replaced wherever it appears (it may contain a
    quote); then any remaining quoted text that is not a controlled term, since rules quote
    terms as 'term'.
    """
    for name in TERM_VALUES:
        term = values.get(name)
        if isinstance(term, str) and term and not is_controlled(term):
            reason = reason.replace(term, WITHHELD)
    return _QUOTED.sub(
        lambda m: (
            m.group(0) if is_controlled(m.group(1)) or m.group(1) == WITHHELD else f"'{WITHHELD}'"
        ),
        reason,
    )


def redact_value(name: str, value: object) -> object:
    """A term-carrying value that is not controlled becomes `WITHHELD`; others unchanged."""
    if name in TERM_VALUES and isinstance(value, str) and not is_controlled(value):
        return WITHHELD
    return value
