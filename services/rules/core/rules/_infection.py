"""Infection definitions shared by the INF rules (core layer): windows, terms, biomarkers.

Source: RULES.md §4.2-4.3. `best_window` finds the 24 h window [s, s + 24 h] (closed, §0.2)
containing a new observation that holds the most distinct criteria (SIRS, qSOFA). INF-06
(procalcitonin >= 0.5 ng/mL, CRP >= 2x the previous value within 48 h [DC]) only annotates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from uuid import UUID

from services.rules.core._catalogue import (
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
Criteria = dict[str, Callable[[Observation], bool]]


def is_infection_ae(ae: AdverseEventState) -> bool:
    """An AE whose term names an infection (SOC Infections stand-in) or infection LLT."""
    return term_has_word(ae.term, ae.meddra_llt_code, words=INFECTION_WORDS, llts=INFECTION_LLT)


def is_catheter_infection_ae(ae: AdverseEventState) -> bool:
    """CTCAE Catheter related infection (LLT 10007810)."""
    return term_in(
        ae.term, ae.meddra_llt_code, terms=CATHETER_INFECTION_TERMS, llts=CATHETER_INFECTION_LLT
    )


def hits(observations: Iterable[Observation], criteria: Criteria) -> list[Hit]:
    """Each (criterion, observation) pair where the observation meets that criterion."""
    return [(name, o) for o in observations for name, met in criteria.items() if met(o)]


def around(
    observations: Iterable[Observation], new: list[Hit], span: timedelta
) -> list[Observation]:
    """The observations within `span` of a new hit: the only ones `best_window` can choose.

    Testing the criteria on these alone (issue 5) gives the same windows as testing them on
    the whole history: every window starts at most `span` before its new hit and is `span`
    long, and the criteria are plain predicates (nothing else happens when they run).
    """
    if not new:
        return []
    first = min(o.at for _, o in new) - span
    last = max(o.at for _, o in new) + span
    return [o for o in observations if first <= o.at <= last]


def best_window(candidates: list[Hit], new: Hit, span: timedelta) -> list[Hit]:
    """Hits of the window around `new` with most criteria (latest each; `new` for its own)."""
    at = new[1].at
    # Only hits within `span` of `new` can be in a window that contains it; dropping the
    # rest before sorting keeps the order (and so the choice) of those that remain.
    nearby = [h for h in candidates if at - span <= h[1].at <= at + span]
    ordered = sorted(nearby, key=lambda h: (h[1].at, str(h[1].event_id)))
    best: dict[str, Hit] = {new[0]: new}
    for start in sorted({o.at for _, o in nearby if at - span <= o.at <= at}):
        chosen = {name: (name, o) for name, o in ordered if start <= o.at <= start + span}
        chosen[new[0]] = new
        if len(chosen) > len(best):
            best = chosen
    return [best[name] for name in sorted(best)]


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
