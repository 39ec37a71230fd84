"""West Haven helpers: overt HE, CLIF-C brain failure, the [DC] CTCAE mapping (RULES.md §2)."""

from __future__ import annotations

import pytest

from clinical.calculators import (
    InvalidInputError,
    ctcae_encephalopathy_grade,
    is_brain_failure,
    is_overt,
    ishen_class,
    west_haven_from_ctcae,
)


@pytest.mark.parametrize(
    ("grade", "overt", "ishen", "brain_failure"),
    [
        (0, False, "covert", False),
        (1, False, "covert", False),
        (2, True, "overt", False),
        (3, True, "overt", True),
        (4, True, "overt", True),
    ],
)
def test_west_haven_classes(grade: int, overt: bool, ishen: str, brain_failure: bool) -> None:
    """AASLD/EASL 2014: overt is WH ≥ 2; CLIF-C OF: brain failure is WH 3–4."""
    assert (is_overt(grade), ishen_class(grade), is_brain_failure(grade)) == (
        overt,
        ishen,
        brain_failure,
    )


def test_published_history_vector_is_new_onset_overt() -> None:
    """RULES.md §2 HE-01 vector: history [0, 1, 1] then 2 is the first overt grade."""
    history, latest = [0, 1, 1], 2

    assert is_overt(latest)
    assert not any(is_overt(grade) for grade in history)


@pytest.mark.parametrize("grade", range(5))
def test_ctcae_mapping_is_grade_for_grade_both_ways(grade: int) -> None:
    """RULES.md §2 [DC]: WH n ↔ CTCAE Encephalopathy G n."""
    assert ctcae_encephalopathy_grade(grade) == grade
    assert west_haven_from_ctcae(ctcae_encephalopathy_grade(grade)) == grade


def test_ae_grade_2_maps_to_overt_he() -> None:
    """RULES.md §2 HE-03 vector: AE Encephalopathy grade 2 is evaluated as overt HE."""
    assert is_overt(west_haven_from_ctcae(2))


@pytest.mark.parametrize("grade", [-1, 5, True, 2.0])
def test_grade_outside_the_scale_is_refused(grade: object) -> None:
    """West Haven runs 0–4; CTCAE grade 5 (death) has no West Haven counterpart."""
    with pytest.raises(InvalidInputError):
        is_overt(grade)  # type: ignore[arg-type] # deliberately wrong input
    with pytest.raises(InvalidInputError):
        west_haven_from_ctcae(grade)  # type: ignore[arg-type] # deliberately wrong input
