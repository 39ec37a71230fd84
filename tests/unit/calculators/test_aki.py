"""KDIGO / ICA-AKI staging: the RULES.md §6 vector, window and ratio boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from clinical.calculators import (
    CreatinineSample,
    InvalidInputError,
    MissingInputError,
    stage_aki,
)

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def _series(*points: tuple[timedelta, float | str | Decimal]) -> list[CreatinineSample]:
    return [
        CreatinineSample(at=T0 + offset, umol_per_l=Decimal(str(value))) for offset, value in points
    ]


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def test_published_vector_is_stage_1a_by_absolute_rise() -> None:
    """RULES.md §6: 70.72 → 97.24 µmol/L in 36 h ⇒ Δ 26.52, stage 1, ratio 1.375, ICA 1A."""
    result = stage_aki(_series((hours(0), "70.72"), (hours(36), "97.24")))

    assert (result.stage, result.ica_stage) == (1, "1A")
    assert result.absolute_rise == Decimal("26.52")
    assert result.ratio == Decimal("1.375")
    assert result.criteria == ("absolute_rise_48h",)


@pytest.mark.parametrize(("second", "stage"), [("126.5", 1), ("126.49", 0)])
def test_absolute_rise_threshold_is_inclusive(second: str, stage: int) -> None:
    """AKI-01: a rise ≥ 26.5 µmol/L within 48 h (KDIGO 0.3 mg/dL)."""
    assert stage_aki(_series((hours(0), 100), (hours(12), second))).stage == stage


@pytest.mark.parametrize(("gap", "stage"), [(hours(48), 1), (hours(48) + timedelta(minutes=1), 0)])
def test_absolute_rise_window_is_closed_at_48_hours(gap: timedelta, stage: int) -> None:
    """RULES.md §0.2: "within 48 h" is the closed interval; a minute more is outside."""
    assert stage_aki(_series((hours(0), 100), (gap, 130))).stage == stage


@pytest.mark.parametrize(
    ("latest", "stage", "ica"),
    [("149.9", 0, None), ("150", 1, "1B"), ("199.9", 1, "1B"), ("200", 2, "2"), ("300", 3, "3")],
)
def test_ratio_to_seven_day_baseline_sets_the_stage(
    latest: str, stage: int, ica: str | None
) -> None:
    """AKI-02/03: × 1.5–1.9 stage 1, 2.0–2.9 stage 2, ≥ 3.0 stage 3 (baseline 100, 4 days back)."""
    result = stage_aki(_series((hours(0), 100), (hours(96), latest)))

    assert (result.stage, result.ica_stage) == (stage, ica)


@pytest.mark.parametrize(
    ("gap", "stage"), [(timedelta(days=7), 2), (timedelta(days=7, minutes=1), 0)]
)
def test_baseline_window_is_closed_at_seven_days(gap: timedelta, stage: int) -> None:
    """AKI-02: the baseline is the lowest sCr within the prior 7 days, closed interval."""
    assert stage_aki(_series((hours(0), 100), (gap, 200))).stage == stage


def test_baseline_is_the_lowest_prior_value() -> None:
    """AKI-02: the lowest of several prior values is the baseline, in any input order."""
    series = _series((hours(100), 120), (hours(0), 60), (hours(120), 130), (hours(50), 90))

    result = stage_aki(series)

    assert result.baseline == 60
    assert result.stage == 2  # 130 / 60 = 2.17


@pytest.mark.parametrize(
    ("earlier", "latest", "stage"), [(327, "353.6", 3), (327, "353.5", 1), (340, 360, 0)]
)
def test_level_of_353_6_needs_an_acute_rise(earlier: float, latest: str, stage: int) -> None:
    """ICA-AKI stage 3: sCr ≥ 353.6 µmol/L only with an acute rise ≥ 26.5 µmol/L."""
    assert stage_aki(_series((hours(0), earlier), (hours(24), latest))).stage == stage


def test_renal_replacement_therapy_is_stage_3() -> None:
    """KDIGO stage 3: initiation of RRT, whatever the creatinine."""
    result = stage_aki(_series((hours(0), 300)), rrt=True)

    assert (result.stage, result.ica_stage, result.criteria) == (3, "3", ("rrt",))


@pytest.mark.parametrize(("latest", "ica"), [("132.9", "1A"), ("133", "1B")])
def test_ica_stage_1_splits_at_133(latest: str, ica: str) -> None:
    """ICA-AKI: stage 1A below 1.5 mg/dL (133 µmol/L), 1B at or above it."""
    earlier = Decimal(latest) - Decimal(30)

    assert stage_aki(_series((hours(0), earlier), (hours(24), latest))).ica_stage == ica


def test_single_sample_is_no_aki() -> None:
    """Without a prior value there is no rise to measure."""
    result = stage_aki(_series((hours(0), 500)))

    assert (result.stage, result.baseline, result.ratio, result.absolute_rise) == (
        0,
        None,
        None,
        None,
    )


def test_empty_series_is_refused() -> None:
    """Staging needs at least one sample."""
    with pytest.raises(MissingInputError):
        stage_aki([])


def test_naive_time_is_refused() -> None:
    """Times are timezone-aware UTC (STYLE.md §3)."""
    with pytest.raises(InvalidInputError):
        stage_aki([CreatinineSample(at=datetime(2024, 3, 1), umol_per_l=80)])
