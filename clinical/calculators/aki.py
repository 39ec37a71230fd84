"""KDIGO 2012 / ICA-AKI 2015 staging from a serum creatinine series (rules core, calculator).

Sources (RULES.md §6): KDIGO Clinical Practice Guideline for AKI 2012 — AKI is a rise of
≥ 0.3 mg/dL (26.5 µmol/L) within 48 h or ≥ 1.5 × a baseline from the prior 7 days; stage 1
1.5–1.9 ×, stage 2 2.0–2.9 ×, stage 3 ≥ 3.0 ×, sCr ≥ 4.0 mg/dL (353.6 µmol/L) or renal
replacement therapy. ICA-AKI (Angeli, J Hepatol 2015;62:968): the 353.6 µmol/L route needs an
acute rise ≥ 26.5 µmol/L, and stage 1 splits at 133 µmol/L (1.5 mg/dL) into 1A / 1B.

Design choices [DC]: the series is staged at its latest sample; "within X h" is the closed
window [t − X, t) (RULES.md §0.2); the baseline is the lowest sample in the prior 7 days
(AKI-02); the "acute rise" of the 353.6 route is the 48-h absolute rise or the 1.5 × ratio
(either shows an acute, not chronic, level); the ICA 1A/1B "peak" is the staged sample.
Creatinine is SI (µmol/L) throughout, as the KDIGO SI thresholds are applied in SI.
Urine output criteria are not covered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

from clinical.calculators._numbers import Numeric, exact, non_negative
from clinical.calculators.errors import InvalidInputError, MissingInputError

ABSOLUTE_RISE_UMOL_L: Final = Decimal("26.5")
STAGE_3_LEVEL_UMOL_L: Final = Decimal("353.6")
ICA_1B_FROM_UMOL_L: Final = Decimal(133)
ABSOLUTE_WINDOW: Final = timedelta(hours=48)
BASELINE_WINDOW: Final = timedelta(days=7)
_RATIO_STAGES: Final = ((Decimal("3.0"), 3), (Decimal("2.0"), 2), (Decimal("1.5"), 1))


@dataclass(frozen=True, slots=True)
class CreatinineSample:
    """One serum creatinine result (µmol/L) at its timezone-aware collection time."""

    at: datetime
    umol_per_l: Numeric


@dataclass(frozen=True, slots=True)
class AkiAssessment:
    """The KDIGO stage (0 = no AKI) of the latest sample, with the evidence behind it.

    Attributes:
        stage: KDIGO stage 0–3.
        ica_stage: "1A", "1B", "2" or "3"; None without AKI.
        absolute_rise: sCr − lowest sCr in the prior 48 h (None without such a sample).
        baseline: lowest sCr in the prior 7 days (None without such a sample).
        ratio: sCr / baseline (None without a baseline).
        criteria: the criteria met, e.g. ("absolute_rise_48h", "ratio_7d").

    """

    stage: int
    ica_stage: str | None
    absolute_rise: Decimal | None
    baseline: Decimal | None
    ratio: Decimal | None
    criteria: tuple[str, ...]


def _lowest_in(
    samples: Sequence[tuple[datetime, Decimal]], at: datetime, window: timedelta
) -> Decimal | None:
    prior = [value for when, value in samples if at - window <= when < at]
    return min(prior) if prior else None


def _checked(series: Sequence[CreatinineSample]) -> list[tuple[datetime, Decimal]]:
    if not series:
        raise MissingInputError("a creatinine series needs at least one sample", field="series")
    if any(sample.at.utcoffset() is None for sample in series):
        raise InvalidInputError("creatinine sample times must be timezone-aware", field="at")
    pairs = [(s.at, non_negative(s.umol_per_l, name="creatinine")) for s in series]
    return sorted(pairs, key=lambda pair: pair[0])


def _ratio_stage(ratio: Decimal | None) -> int:
    return next((stage for cut, stage in _RATIO_STAGES if ratio is not None and ratio >= cut), 0)


def _criteria(rise: Decimal | None, ratio_stage: int, *, level: Decimal, rrt: bool) -> list[str]:
    met = []
    if rise is not None and rise >= ABSOLUTE_RISE_UMOL_L:
        met.append("absolute_rise_48h")
    if ratio_stage:
        met.append("ratio_7d")
    if met and level >= STAGE_3_LEVEL_UMOL_L:
        met.append("level_with_acute_rise")
    if rrt:
        met.append("rrt")
    return met


def _stage(criteria: list[str], ratio_stage: int) -> int:
    if not criteria:
        return 0
    if {"level_with_acute_rise", "rrt"} & set(criteria):
        return 3
    return max(ratio_stage, 1)  # the 48-h absolute rise alone is stage 1


def _ica_stage(stage: int, level: Decimal) -> str | None:
    if stage != 1:
        return str(stage) if stage else None
    return "1B" if level >= ICA_1B_FROM_UMOL_L else "1A"


@exact
def stage_aki(series: Sequence[CreatinineSample], *, rrt: bool = False) -> AkiAssessment:
    """Stage AKI at the latest sample of `series` (KDIGO 2012 / ICA 2015 creatinine criteria).

    Args:
        series: creatinine results in any order; the latest is the one staged.
        rrt: renal replacement therapy has been started (stage 3).

    """
    samples = _checked(series)
    at, level = samples[-1]
    low_48h = _lowest_in(samples, at, ABSOLUTE_WINDOW)
    baseline = _lowest_in(samples, at, BASELINE_WINDOW)
    rise = None if low_48h is None else level - low_48h
    ratio = None if not baseline else level / baseline
    ratio_stage = _ratio_stage(ratio)
    criteria = _criteria(rise, ratio_stage, level=level, rrt=rrt)
    stage = _stage(criteria, ratio_stage)
    return AkiAssessment(stage, _ica_stage(stage, level), rise, baseline, ratio, tuple(criteria))


__all__ = [
    "ABSOLUTE_RISE_UMOL_L",
    "STAGE_3_LEVEL_UMOL_L",
    "AkiAssessment",
    "CreatinineSample",
    "stage_aki",
]
