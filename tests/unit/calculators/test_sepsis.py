"""SIRS and qSOFA counts: strict RULES.md §4.2 thresholds and incomplete observations."""

from __future__ import annotations

import pytest

from clinical.calculators import (
    CriteriaCount,
    SirsObservations,
    altered_mentation,
    grade,
    qsofa,
    sirs,
)


def test_published_fever_vector_is_ctcae_g1_but_not_sirs() -> None:
    """RULES.md §4.3 INF-01/02: T 38.0 °C is CTCAE Fever G1 and does not meet SIRS."""
    result = sirs(SirsObservations(temperature_c=38.0))

    assert result.met == ()
    assert grade("Fever", 38.0) == 1


@pytest.mark.parametrize(
    ("observations", "met"),
    [
        (SirsObservations(temperature_c=38.0), False),
        (SirsObservations(temperature_c=38.1), True),
        (SirsObservations(temperature_c=36.0), False),
        (SirsObservations(temperature_c=35.9), True),
        (SirsObservations(heart_rate=90), False),
        (SirsObservations(heart_rate=91), True),
        (SirsObservations(respiratory_rate=20), False),
        (SirsObservations(respiratory_rate=21), True),
        (SirsObservations(paco2_mmhg=32), False),
        (SirsObservations(paco2_mmhg=31.9), True),
        (SirsObservations(wbc=12), False),
        (SirsObservations(wbc=12.1), True),
        (SirsObservations(wbc=4), False),
        (SirsObservations(wbc=3.9), True),
        (SirsObservations(bands_percent=10), False),
        (SirsObservations(bands_percent=10.5), True),
    ],
)
def test_sirs_thresholds_are_strict(observations: SirsObservations, met: bool) -> None:
    """ACCP/SCCM 1992: T > 38/< 36, HR > 90, RR > 20/PaCO2 < 32, WBC > 12/< 4, bands > 10 %."""
    result = sirs(observations)

    assert (result.count == 1, result.evaluable) == (met, 1)


def test_sirs_with_all_criteria_met() -> None:
    """Four criteria met of four evaluable is positive."""
    observations = SirsObservations(temperature_c=39, heart_rate=120, respiratory_rate=28, wbc=15)

    result = sirs(observations)

    assert result == CriteriaCount(
        met=("temperature", "heart_rate", "respiration", "white_cells"), evaluable=4, total=4
    )
    assert result.positive


def test_sirs_counts_only_what_is_known() -> None:
    """Missing observations are neither met nor evaluable; the count says how many were."""
    result = sirs(SirsObservations(heart_rate=110))

    assert (result.count, result.evaluable, result.total) == (1, 1, 4)
    assert not result.positive
    assert result.could_be_positive


def test_compound_criterion_is_met_by_either_observation() -> None:
    """RR ≤ 20 with PaCO2 < 32 still meets the respiratory criterion, counted once."""
    result = sirs(SirsObservations(respiratory_rate=18, paco2_mmhg=28, wbc=8, bands_percent=12))

    assert result.met == ("respiration", "white_cells")
    assert result.evaluable == 2


@pytest.mark.parametrize(
    ("respiratory_rate", "systolic_bp", "count"),
    [(22, 100, 2), (21, 101, 0), (22, 101, 1), (21, 100, 1)],
)
def test_qsofa_thresholds_are_inclusive(
    respiratory_rate: int, systolic_bp: int, count: int
) -> None:
    """Sepsis-3 qSOFA: RR ≥ 22/min and SBP ≤ 100 mmHg."""
    result = qsofa(
        respiratory_rate=respiratory_rate, altered_mentation=False, systolic_bp=systolic_bp
    )

    assert (result.count, result.evaluable) == (count, 3)


def test_qsofa_counts_only_what_is_known() -> None:
    """Unknown mentation is not assumed normal: it stays unevaluated."""
    result = qsofa(respiratory_rate=24)

    assert (result.met, result.evaluable, result.total) == (("respiratory_rate",), 1, 3)
    assert result.could_be_positive


def test_qsofa_with_altered_mentation_and_low_pressure_is_positive() -> None:
    """qSOFA ≥ 2 is a positive sepsis screen (INF-03)."""
    assert qsofa(altered_mentation=True, systolic_bp=95).positive


@pytest.mark.parametrize(
    ("gcs", "new_west_haven", "expected"),
    [(15, None, False), (14, None, True), (None, 2, True), (15, 1, False), (None, None, None)],
)
def test_altered_mentation_from_gcs_or_west_haven(
    gcs: int | None, new_west_haven: int | None, expected: bool | None
) -> None:
    """INF-03 [DC]: altered mentation = GCS < 15 or new West Haven ≥ 2; unknown stays unknown."""
    assert altered_mentation(gcs=gcs, new_west_haven=new_west_haven) is expected
