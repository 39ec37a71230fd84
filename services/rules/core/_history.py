"""How long the projection keeps each kind of history, and the pruning (core layer; pure).

A fact arriving late, with clinical time t, needs the history its rules read around t. The
projection keeps every kind for its longest window plus `late_data_allowance_days` before
the newest clinical time seen, so any fact up to that late is evaluated against a complete
history; an older one is still evaluated, against what is left (AEs and protocol procedures
are never pruned, so the AE-route rules and VB-05's 42 days see everything).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import lru_cache
from operator import attrgetter

from services.rules.core.config import TrialConfig, days, hours
from services.rules.core.state import ByKind, Observation, ParticipantState, Procedure


@lru_cache(maxsize=8)
def retention(config: TrialConfig) -> tuple[dict[str, timedelta], timedelta]:
    """Per-kind retention, and the default for other kinds and for non-protocol treatments."""
    he, vb, inf, proc = config.he, config.bleeding, config.infection, config.procedures
    liver, aki = config.liver, config.aki
    # MELD at every point of the LFP-02 lookback needs its inputs from 48 h before it.
    meld_span = days(liver.meld_lowest_lookback_days) + hours(liver.meld_inputs_within_hours)
    organ_span = hours(liver.of_current_hours)
    allowance = days(config.alerting.late_data_allowance_days)
    window_24h = max(inf.sirs_window_hours, inf.qsofa_window_hours, vb.hb_drop_window_hours)
    haemodynamic = (
        max(
            proc.ir_msc_hours + proc.assumed_msc_minutes / 60,
            proc.ir_pe_hours + proc.assumed_pe_minutes / 60,
        )
        + proc.baseline_lookback_hours
    )
    windows = {
        "wh": max(days(he.new_onset_lookback_days) + hours(inf.qsofa_window_hours), organ_span),
        "hb": hours(vb.hb_drop_window_hours),
        "temp": hours(max(inf.sirs_window_hours, inf.biomarker_window_hours)),
        "hr": hours(max(inf.sirs_window_hours, haemodynamic)),
        "rr": hours(max(inf.sirs_window_hours, inf.qsofa_window_hours)),
        "wbc": hours(inf.sirs_window_hours),
        "sbp": hours(max(inf.qsofa_window_hours, haemodynamic)),
        "spo2": hours(haemodynamic),
        "map": hours(haemodynamic),
        "gcs": hours(inf.qsofa_window_hours),
        "lactate": hours(inf.qsofa_window_hours),
        "ammonia": hours(he.ammonia_window_hours),
        "sodium": hours(he.precipitant_window_hours),
        "potassium": hours(he.precipitant_window_hours),
        "platelets": hours(vb.pe_risk_lookback_hours),
        "inr": max(hours(vb.pe_risk_lookback_hours), meld_span, organ_span),
        "bilirubin": max(meld_span, organ_span),
        "creatinine": max(meld_span, organ_span, days(aki.baseline_window_days)),
        "pct": hours(inf.biomarker_window_hours),
        "uo": hours(aki.uo_hours + aki.uo_max_gap_hours),
        "crp": hours(inf.crp_window_hours + inf.biomarker_window_hours),
        "culture": hours(inf.catheter_culture_window_hours),
        "episode": hours(
            max(
                config.alerting.refire_quiet_hours,
                he.precipitant_window_hours,
                inf.catheter_culture_window_hours,
            )
        ),
    }
    return {kind: span + allowance for kind, span in windows.items()}, hours(window_24h) + allowance


def prune(
    state: ParticipantState, horizon: dict[str, timedelta], *, default: timedelta
) -> ParticipantState:
    """Drop observations, non-protocol treatments and episodes no rule window can reach.

    `horizon[kind]` is how far before the newest clinical time (`state.clock`) a kind is
    still needed (its longest window plus the late-data allowance); `default` covers the rest.
    """
    clock = state.clock
    if clock is None:
        return state
    shortest = min(default, *horizon.values())
    split = bisect_left(state.observations, clock - shortest, key=_time)
    old = state.observations[:split]  # only these can be past their kind's retention
    kept = (
        tuple(o for o in old if o.at >= clock - horizon.get(o.kind, default))
        if old and _expired(state, clock, horizon, default)
        else old
    )
    # The cut-offs once per fact, not once per item.
    treated_after, episode_after = clock - default, clock - horizon["episode"]
    procedures = tuple(
        p for p in state.procedures if p.treatment in _PROTOCOL or _end(p) >= treated_after
    )
    episodes = tuple(e for e in state.episodes if e.last_at >= episode_after)
    if (len(kept), len(procedures), len(episodes)) == (
        len(old),
        len(state.procedures),
        len(state.episodes),
    ):
        return state
    observations = kept + state.observations[split:]
    return replace(
        state,
        observations=observations,
        procedures=procedures,
        episodes=episodes,
        by_kind=_regrouped(state, observations, old, kept),
    )


def _expired(
    state: ParticipantState, clock: datetime, horizon: dict[str, timedelta], default: timedelta
) -> bool:
    """Tell whether some observation is past its kind's retention (True when unsure).

    Each kind's oldest observation is the first of its group (most facts drop
    none, and this looks at one observation per kind instead of every old one).
    """
    index = state.valid_by_kind()
    if index is None:
        return True
    return any(
        group[0].at < clock - horizon.get(kind, default)
        for kind, group in index.groups.items()
        if group
    )


def _regrouped(
    state: ParticipantState,
    observations: tuple[Observation, ...],
    old: tuple[Observation, ...],
    kept: tuple[Observation, ...],
) -> ByKind | None:
    """`state.by_kind` without the observations `prune` dropped (those of `old` not `kept`)."""
    index = state.valid_by_kind()
    if index is None:
        return None  # made when first asked for
    if len(kept) == len(old):  # only treatments or episodes went
        return ByKind(observations, index.groups)
    # By identity: exactly the objects dropped, whatever equal observations there are.
    staying = {id(o) for o in kept}
    dropped = [o for o in old if id(o) not in staying]
    groups = dict(index.groups)
    for kind in {o.kind for o in dropped}:
        gone = {id(o) for o in dropped if o.kind == kind}
        remaining = tuple([o for o in groups[kind] if id(o) not in gone])
        if remaining:
            groups[kind] = remaining
        else:
            del groups[kind]
    return ByKind(observations, groups)


#: An observation's clinical time, the bisection key; read in C, with no Python call per
#: step of the bisection.
_time: Callable[[Observation], datetime] = attrgetter("at")


_PROTOCOL = frozenset({"uc_msc_infusion", "plasma_exchange"})


def _end(procedure: Procedure) -> datetime:
    return procedure.ended_at or procedure.started_at
