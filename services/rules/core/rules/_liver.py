"""What the liver-failure progression rules share (core layer): MELD over time, CLIF-C OF.

RULES.md §5.1/§5.3: original MELD (OPTN integer, `calculators.meld`) from bilirubin, INR and
creatinine collected within 48 h of each other, converted from SI with the calculators'
helpers; OPTN dialysis rule (≥ 2 renal replacement sessions, or one of ≥ 24 h, in the prior
week). CLIF-C organ failures from the latest value of each input that is still current.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from clinical.calculators import (
    MeldLabs,
    bilirubin_mg_dl,
    creatinine_mg_dl,
    meld,
)
from schemas import ClinicalFact, Treatment, TreatmentAdministered
from services.rules.core.config import TrialConfig, days, hours
from services.rules.core.rules._alerting import fresh
from services.rules.core.state import Observation, ParticipantState, Procedure

MELD_KINDS = ("bilirubin", "inr", "creatinine")
RRT = Treatment.RENAL_REPLACEMENT.value
VASOPRESSOR = Treatment.VASOPRESSOR.value
_CVVHD_HOURS = 24


@dataclass(frozen=True, slots=True)
class MeldPoint:
    """An original MELD at a clinical time, from the three inputs it was computed from."""

    at: datetime
    score: int
    bilirubin: Observation
    inr: Observation
    creatinine: Observation
    dialysis: bool

    @property
    def inputs(self) -> tuple[Observation, Observation, Observation]:
        """The bilirubin, INR and creatinine results behind the score."""
        return (self.bilirubin, self.inr, self.creatinine)


def latest(series: tuple[Observation, ...], at: datetime) -> Observation | None:
    """The last observation of a time-sorted series at or before `at`."""
    index = bisect_right(series, at, key=_time)
    return series[index - 1] if index else None


def on_dialysis(state: ParticipantState, at: datetime, config: TrialConfig) -> bool:
    """OPTN: ≥ 2 renal replacement sessions, or one lasting ≥ 24 h, in the week up to `at`."""
    since = at - days(config.liver.dialysis_lookback_days)
    sessions = [p for p in state.procedures if p.treatment == RRT and since <= p.started_at <= at]
    long_run = any(
        p.ended_at is not None and p.ended_at - p.started_at >= hours(_CVVHD_HOURS)
        for p in sessions
    )
    return long_run or len(sessions) >= config.liver.dialysis_treatments


def meld_at(state: ParticipantState, at: datetime, config: TrialConfig) -> MeldPoint | None:
    """MELD from the latest inputs at or before `at`, if all three lie within 48 h."""
    bili, inr, cr = (latest(state.series(kind), at) for kind in MELD_KINDS)
    return _meld_point(state, bili, inr, cr, config)


def _meld_point(
    state: ParticipantState,
    bili: Observation | None,
    inr: Observation | None,
    cr: Observation | None,
    config: TrialConfig,
) -> MeldPoint | None:
    if bili is None or inr is None or cr is None or min(o.value for o in (bili, inr, cr)) < 0:
        return None
    times = [o.at for o in (bili, inr, cr)]
    if max(times) - min(times) > hours(config.liver.meld_inputs_within_hours):
        return None
    dialysis = on_dialysis(state, max(times), config)
    score = _meld(bili.value, inr.value, cr.value, dialysis=dialysis)
    return MeldPoint(max(times), score, bili, inr, cr, dialysis)


@lru_cache(maxsize=4096, typed=True)
def _meld(bilirubin: float, inr: float, creatinine: float, *, dialysis: bool) -> int:
    """Original MELD from SI inputs, remembered (three decimal logarithms a call).

    LFP-01, LFP-02 (over its 14-day lookback) and each later fact recompute the MELD of
    the same input results. Safe: a pure function of these immutable numbers; errors are
    never remembered.
    """
    labs = MeldLabs(
        bilirubin=bilirubin_mg_dl(bilirubin),
        inr=inr,
        creatinine=creatinine_mg_dl(creatinine),
        dialysis=dialysis,
    )
    return meld(labs)


def new_meld_points(
    state: ParticipantState, fact: ClinicalFact, config: TrialConfig
) -> tuple[MeldPoint, ...]:
    """MELD scores this fact's bilirubin/INR/creatinine results complete after randomisation."""
    enrolled = state.enrolled_at
    if enrolled is None:
        return ()
    points = (meld_at(state, o.at, config) for o in fresh(state, fact, *MELD_KINDS))
    return _unique(p for p in points if p is not None and p.at >= enrolled)


def lowest_before(
    state: ParticipantState, point: MeldPoint, config: TrialConfig
) -> MeldPoint | None:
    """The lowest MELD computable in the lookback (14 d) before `point`."""
    since = point.at - days(config.liver.meld_lowest_lookback_days)
    groups = [state.series(kind) for kind in MELD_KINDS]
    times = sorted({o.at for group in groups for o in group if since <= o.at < point.at})
    scores = [p for p in _melds_at(state, groups, times, config) if p is not None]
    scores = [p for p in scores if since <= p.at < point.at]
    return min(scores, key=lambda p: (p.score, p.at), default=None)


def _melds_at(
    state: ParticipantState,
    groups: list[tuple[Observation, ...]],
    times: list[datetime],
    config: TrialConfig,
) -> Iterator[MeldPoint | None]:
    """`meld_at` at each of the ascending `times`, in one sweep of each input's series.

    The latest input of each kind at or before a time (`latest`) only moves forward as the
    times do, so one pointer per series replaces a bisection per time.
    """
    ends = [0, 0, 0]
    for at in times:
        found: list[Observation | None] = []
        for index, group in enumerate(groups):
            end = ends[index]
            while end < len(group) and group[end].at <= at:
                end += 1
            ends[index] = end
            found.append(group[end - 1] if end else None)
        bili, inr, cr = found
        yield _meld_point(state, bili, inr, cr, config)


def meld_values(point: MeldPoint) -> dict[str, str | float | int | bool | None]:
    """Signal values describing a MELD and its inputs (SI, as measured)."""
    span = max(o.at for o in point.inputs) - min(o.at for o in point.inputs)
    return {
        "meld": point.score,
        "bilirubin_umol_l": point.bilirubin.value,
        "inr": point.inr.value,
        "creatinine_umol_l": point.creatinine.value,
        "dialysis_rule": point.dialysis,
        "inputs_span_hours": round(span.total_seconds() / 3600, 2),
    }


def _unique(points: Iterable[MeldPoint]) -> tuple[MeldPoint, ...]:
    return tuple({p.at: p for p in points}.values())


def _time(observation: Observation) -> datetime:
    return observation.at


# --- CLIF-C organ failures (RULES.md LFP-03) ---

ORGAN_KINDS = ("bilirubin", "creatinine", "inr", "wh")
ORGANS = ("liver", "kidney", "brain", "coagulation", "circulation")
Evidence = Observation | Procedure


def organ_failures(
    state: ParticipantState, at: datetime, config: TrialConfig
) -> dict[str, Evidence]:
    """CLIF-C organ failures current at `at`, with the result or treatment showing each."""
    cfg = config.liver
    since = at - hours(cfg.of_current_hours)
    failing: dict[str, Evidence] = {}
    for organ, kind, limit in (
        ("liver", "bilirubin", cfg.of_bilirubin_umol_l),
        ("kidney", "creatinine", cfg.of_creatinine_umol_l),
        ("brain", "wh", cfg.of_west_haven),
        ("coagulation", "inr", cfg.of_inr),
    ):
        value = latest(state.series(kind), at)
        if value is not None and value.at >= since and value.value >= limit:
            failing[organ] = value
    for organ, treatment in (("kidney", RRT), ("circulation", VASOPRESSOR)):
        support = _support(state.procedures, treatment, since, at)
        if support is not None and organ not in failing:
            failing[organ] = support
    return {organ: failing[organ] for organ in ORGANS if organ in failing}


def baseline_failures(state: ParticipantState, config: TrialConfig) -> frozenset[str]:
    """Organs already failing at baseline (last result of each input before randomisation)."""
    cfg = config.liver
    limits = {
        "liver": ("bilirubin", cfg.of_bilirubin_umol_l),
        "kidney": ("creatinine", cfg.of_creatinine_umol_l),
        "brain": ("wh", cfg.of_west_haven),
        "coagulation": ("inr", cfg.of_inr),
    }
    return frozenset(
        organ
        for organ, (kind, limit) in limits.items()
        if (value := state.baseline(kind)) is not None and value.value >= limit
    )


def organ_times(state: ParticipantState, fact: ClinicalFact) -> tuple[datetime, ...]:
    """Clinical times at which this fact may have changed an organ-failure assessment."""
    if isinstance(fact, TreatmentAdministered):
        organ_support = fact.payload.treatment.value in {RRT, VASOPRESSOR}
        return (fact.occurred_at,) if organ_support else ()
    return tuple(sorted({o.at for o in fresh(state, fact, *ORGAN_KINDS)}))


def _support(
    procedures: tuple[Procedure, ...], treatment: str, since: datetime, at: datetime
) -> Procedure | None:
    running = [
        p
        for p in procedures
        if p.treatment == treatment and p.started_at <= at and (p.ended_at or p.started_at) >= since
    ]
    return running[-1] if running else None
