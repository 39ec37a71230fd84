"""West Haven grade helpers for hepatic encephalopathy (rules core, pure calculator).

Sources (RULES.md §2): West Haven criteria and the ISHEN covert/overt split as in the
AASLD/EASL 2014 HE guideline (Vilstrup, J Hepatol 2014;61:642) — overt HE is WH ≥ 2;
CLIF-C organ-failure scoring treats WH 3–4 as brain failure [PUB, CLIF-C OF]. The mapping
to the CTCAE "Encephalopathy" grade, WH n → G n, is a design choice [DC] the sponsor must
confirm; CTCAE grade 5 (death) has no West Haven counterpart.
"""

from __future__ import annotations

from typing import Final, Literal

from clinical.calculators.errors import InvalidInputError

WEST_HAVEN_GRADES: Final = range(5)
OVERT_FROM: Final = 2
BRAIN_FAILURE_FROM: Final = 3


def _checked(grade: int, *, scale: str, grades: range) -> int:
    if isinstance(grade, bool) or not isinstance(grade, int) or grade not in grades:
        msg = f"{scale} grade must be one of {list(grades)}, not {grade!r}"
        raise InvalidInputError(msg, field="grade")
    return grade


def is_overt(west_haven: int) -> bool:
    """Overt hepatic encephalopathy: West Haven grade ≥ 2 (AASLD/EASL 2014, ISHEN)."""
    return _checked(west_haven, scale="West Haven", grades=WEST_HAVEN_GRADES) >= OVERT_FROM


def ishen_class(west_haven: int) -> Literal["covert", "overt"]:
    """ISHEN class: WH 0/minimal–1 covert, WH 2–4 overt."""
    return "overt" if is_overt(west_haven) else "covert"


def is_brain_failure(west_haven: int) -> bool:
    """CLIF-C organ-failure brain failure: West Haven grade 3–4."""
    grade = _checked(west_haven, scale="West Haven", grades=WEST_HAVEN_GRADES)
    return grade >= BRAIN_FAILURE_FROM


def ctcae_encephalopathy_grade(west_haven: int) -> int:
    """Map a West Haven grade to the CTCAE Encephalopathy grade, WH n → G n [DC]."""
    return _checked(west_haven, scale="West Haven", grades=WEST_HAVEN_GRADES)


def west_haven_from_ctcae(ctcae_grade: int) -> int:
    """Map a CTCAE Encephalopathy grade 0–4 back to West Haven, G n → WH n [DC] (HE-03)."""
    return _checked(ctcae_grade, scale="CTCAE Encephalopathy", grades=range(5))


__all__ = [
    "ctcae_encephalopathy_grade",
    "is_brain_failure",
    "is_overt",
    "ishen_class",
    "west_haven_from_ctcae",
]
