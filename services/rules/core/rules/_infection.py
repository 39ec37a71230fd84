"""Infection definitions shared by the INF rules (core layer): windows, terms, biomarkers.

Source: RULES.md §4.2-4.3. `best_window` finds the 24 h window [s, s + 24 h] (closed, §0.2)
containing a new observation that holds the most distinct criteria (SIRS, qSOFA). INF-06
(procalcitonin >= 0.5 ng/mL, CRP >= 2x the previous value within 48 h [DC]) only annotates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from uuid import UUID

from clinical.codes import (
    CATHETER_INFECTION_LLT,
    CATHETER_INFECTION_TERMS,
    INFECTION_LLT,
    INFECTION_WORDS,
    term_has_word,
    term_in,
)
from services.rules.core.config import TrialConfig, hours
from services.rules.core.rules._alerting import Value
from services.rules.core.state import AdverseEventState, Observation, ParticipantState

Hit = tuple[str, Observation]  # (criterion name, the observation meeting it)
Test = Callable[[Observation], bool]
#: Criterion name -> (the observation kinds it can hold for, its test of one observation).
Criteria = dict[str, tuple[tuple[str, ...], Test]]


def is_infection_ae(ae: AdverseEventState) -> bool:
    """An AE whose term names an infection (SOC Infections stand-in) or infection LLT."""
    return term_has_word(ae.term, ae.meddra_llt_code, words=INFECTION_WORDS, llts=INFECTION_LLT)


def is_catheter_infection_ae(ae: AdverseEventState) -> bool:
    """CTCAE Catheter related infection (LLT 10007810)."""
    return term_in(
        ae.term, ae.meddra_llt_code, terms=CATHETER_INFECTION_TERMS, llts=CATHETER_INFECTION_LLT
    )


def hits(observations: Iterable[Observation], criteria: Criteria) -> list[Hit]:
    """Each (criterion, observation) pair where the observation meets that criterion.

    A criterion is tried only on observations of its kinds (far fewer pairs); its test also checks
    the kind, so the pairs, and their order (criteria in order for each observation), are
    those of trying every criterion on every observation.
    """
    if not observations:
        return []
    tried: dict[str, list[tuple[str, Test]]] = {}
    for name, (kinds, met) in criteria.items():
        for kind in kinds:
            tried.setdefault(kind, []).append((name, met))
    return [(name, o) for o in observations for name, met in tried.get(o.kind, ()) if met(o)]


def around_in(
    state: ParticipantState, kinds: tuple[str, ...], new: list[Hit], span: timedelta
) -> tuple[Observation, ...]:
    """The `kinds` observations within `span` of a new hit: all `best_window` can choose.

    Testing the criteria on these alone (not the whole history, for speed) gives the same
    windows as testing them on the whole history: every window starts at most `span` before
    its new hit and is `span` long, and the criteria are plain predicates (nothing else
    happens when they run). They are read by bisecting the time-sorted history: the order
    of `state.series(*kinds)`.
    """
    if not new:
        return ()
    first = min(o.at for _, o in new) - span
    last = max(o.at for _, o in new) + span
    return state.between(first, last, *kinds)


def best_window(candidates: list[Hit], new: Hit, span: timedelta) -> list[Hit]:
    """Hits of the window around `new` with most criteria (latest each; `new` for its own).

    The window starts at a hit's time at most `span` before `new`; the earliest start with
    the most criteria wins, as when every start was tried in turn.
    """
    at = new[1].at
    # Only hits within `span` of `new` can be in a window that contains it; dropping the
    # rest before sorting keeps the order (and so the choice) of those that remain.
    nearby = [h for h in candidates if at - span <= h[1].at <= at + span]
    ordered = sorted(nearby, key=_hit_order)
    starts = sorted({o.at for _, o in nearby if at - span <= o.at <= at})
    start = _fullest_start(ordered, starts, new[0], span)
    if start is None:
        return [new]
    chosen = {name: (name, o) for name, o in ordered if start <= o.at <= start + span}
    chosen[new[0]] = new
    return [chosen[name] for name in sorted(chosen)]


def _hit_order(hit: Hit) -> tuple[datetime, int]:
    # The order of (time, str(event id)): a UUID's fixed-width lower-case hex string sorts
    # as its integer does, without formatting it.
    return (hit[1].at, hit[1].event_id.int)


def _fullest_start(
    ordered: list[Hit], starts: list[datetime], own: str, span: timedelta
) -> datetime | None:
    """The earliest of `starts` whose window [start, start + span] holds most criteria.

    One sweep (linear, not quadratic): the window's hits are counted by criterion as it
    slides forward, instead of collecting them again for every start; `own` (the new hit's
    criterion) always counts.
    """
    counts: dict[str, int] = {}
    best: datetime | None = None
    most = 0
    low = high = 0
    for start in starts:
        while high < len(ordered) and ordered[high][1].at <= start + span:
            counts[ordered[high][0]] = counts.get(ordered[high][0], 0) + 1
            high += 1
        while low < high and ordered[low][1].at < start:
            name = ordered[low][0]
            counts[name] -= 1
            if not counts[name]:
                del counts[name]
            low += 1
        size = len(counts) + (own not in counts)
        if size > most:
            best, most = start, size
    return best


def biomarkers(
    state: ParticipantState, at: datetime, config: TrialConfig
) -> tuple[dict[str, Value], tuple[UUID, ...]]:
    """INF-06 annotation: procalcitonin or CRP doubling near `at` labels infection likely."""
    cfg = config.infection
    span = hours(cfg.biomarker_window_hours)
    pct = [o for o in state.series("pct") if abs(o.at - at) <= span and o.value >= cfg.pct_ng_ml]
    crps = state.series("crp")
    doubled = [
        later
        for later in crps
        if abs(later.at - at) <= span
        and any(
            later.at - hours(cfg.crp_window_hours) <= earlier.at < later.at
            and later.value >= cfg.crp_ratio * earlier.value
            for earlier in crps
        )
    ]
    values: dict[str, Value] = {
        "infection_likely": bool(pct or doubled),
        "pct_ng_ml": max((o.value for o in pct), default=None),
        "crp_doubled": bool(doubled),
    }
    return values, tuple(o.event_id for o in (*pct, *doubled))
