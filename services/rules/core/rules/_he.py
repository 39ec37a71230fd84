"""West Haven history reading shared by HE-01 and HE-02 (core layer), with HE-04/05 notes.

Source: RULES.md §2. West Haven points come from ClinicalAssessmentRecorded and, through
HE-03, from AEs coded hepatic encephalopathy / encephalopathy (LLT 10014625) / hepatic coma
with the CTCAE grade mapped WH1->G1 ... WH4->G4 [DC]. HE-04 (ammonia, AASLD/EASL 2014) and
HE-05 (precipitants) are annotations on the HE signal, never triggers of their own.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from uuid import UUID

from schemas import ClinicalFact, Urgency
from services.rules.core.config import TrialConfig, days, hours
from services.rules.core.projection import is_he_ae
from services.rules.core.rules._alerting import INV_SO, Finding, Value, fresh, late_values
from services.rules.core.state import AdverseEventState, Observation, ParticipantState

OVERT = 2
SEVERE = 3
FAMILY = "HE"


@dataclass(frozen=True, slots=True)
class HEFinding:
    """An HE-01/02 candidate: the new West Haven point and what it is compared with."""

    point: Observation
    previous: Observation | None
    ae: AdverseEventState | None


def new_points(state: ParticipantState, fact: ClinicalFact) -> tuple[Observation, ...]:
    """West Haven points this fact contributed, after enrolment (baseline grades excluded)."""
    points = fresh(state, fact, "wh")
    if state.enrolled_at is None:
        return points
    return tuple(p for p in points if p.at >= state.enrolled_at)


def previous(state: ParticipantState, point: Observation) -> Observation | None:
    """The assessment just before `point` (the highest grade when several share a time).

    That is the first point, in the time-sorted series, of the highest (time, grade) at or
    before `point` other than itself (what `max` over the series picks). INF-03 asks it of
    every West Haven point near a new one, so it is found by bisection and a walk back
    over the points sharing that time, not by a pass over the history (which would cost
    the history's length per point).
    """
    series = state.series("wh")
    mine = point.event_id.int  # UUIDs differ exactly when their integers do; ints compare in C
    last = bisect_right(series, point.at, key=_time) - 1
    while last >= 0 and series[last].event_id.int == mine:
        last -= 1
    if last < 0:
        return None
    latest = series[last].at
    first = last
    while first and series[first - 1].at == latest:
        first -= 1
    best: Observation | None = None
    for candidate in series[first : last + 1]:
        if candidate.event_id.int != mine and (best is None or candidate.value > best.value):
            best = candidate
    return best


#: An observation's clinical time, the bisection key (read in C: no Python call per step).
_time: Callable[[Observation], datetime] = attrgetter("at")


def is_new_onset(state: ParticipantState, point: Observation, config: TrialConfig) -> bool:
    """HE-01: WH >= 2 and every grade since randomisation or in the prior 14 d was <= 1.

    An overt grade already known at or within the lookback after `point` (a later point that
    fired first) makes this the same episode: a late fact does not start it again.
    """
    if point.value < OVERT:
        return False
    span = days(config.he.new_onset_lookback_days)
    start = point.at - span
    if state.enrolled_at is not None:
        start = max(start, state.enrolled_at)
    mine = point.event_id.int
    others = [o for o in state.series("wh") if o.event_id.int != mine]
    overt_before = any(start <= o.at < point.at and o.value >= OVERT for o in others)
    overt_after = any(point.at <= o.at <= point.at + span and o.value >= OVERT for o in others)
    return not (overt_before or overt_after)


def is_worsening(point: Observation, prior: Observation | None, config: TrialConfig) -> bool:
    """HE-02: an overt WH >= previous + 1 within 72 h, or any WH >= 3.

    A rise within the covert grades (0 -> 1) is not "worsening HE" [DC]: RULES.md's test
    vector expects the history [0, 1, 1] to be silent until the overt grade 2.
    """
    if point.value >= SEVERE:
        return True
    if prior is None or point.value < OVERT:
        return False
    recent = point.at - prior.at <= hours(config.he.worsening_window_hours)
    return recent and point.value >= prior.value + 1


def he_ae(state: ParticipantState, fact: ClinicalFact) -> AdverseEventState | None:
    """The HE AE this fact reported (HE-03 route), if it was one."""
    return next((ae for ae in state.adverse_events.holding(fact.event_id) if is_he_ae(ae)), None)


def finding(
    state: ParticipantState,
    fact: ClinicalFact,
    he: HEFinding,
    *,
    rule: tuple[str, int, str],
    config: TrialConfig,
) -> Finding:
    """Build the HE-01/02 finding with HE-04 and HE-05 annotations."""
    rule_id, version, title = rule
    grade = int(he.point.value)
    notes, noted_ids = _annotations(state, he.point, config)
    previous_grade = None if he.previous is None else int(he.previous.value)
    values: dict[str, Value] = {
        "west_haven_grade": grade,
        "previous_west_haven_grade": previous_grade,
        "route": "assessment" if he.ae is None else "adverse_event (HE-03)",
        **({} if he.ae is None else {"ae_ref": he.ae.ae_ref, "ctcae_grade": he.ae.ctcae_grade}),
        **notes,
        **late_values(fact, config),
    }
    route = "West Haven assessment" if he.ae is None else f"AE {he.ae.ae_ref} '{he.ae.term}'"
    reason = f"{route}: West Haven grade {grade}" + (
        "" if previous_grade is None else f" (previous {previous_grade})"
    )
    evidence = (
        fact.event_id,
        *(() if he.previous is None else (he.previous.event_id,)),
        *noted_ids,
    )
    return Finding(
        rule_id,
        version,
        "hepatic_encephalopathy",
        title,
        Urgency.U0 if grade >= SEVERE else Urgency.U1,
        INV_SO,
        reason + _note_text(notes),
        evidence,
        values,
        (fact.event_id,),
    )


def _annotations(
    state: ParticipantState, point: Observation, config: TrialConfig
) -> tuple[dict[str, Value], tuple[UUID, ...]]:
    notes: dict[str, Value] = {}
    ids: list[UUID] = []
    ammonia = _nearest(state.series("ammonia"), point, config.he.ammonia_window_hours)
    if ammonia is not None:
        notes["ammonia_umol_l"] = ammonia.value
        notes["ammonia_uln_umol_l"] = ammonia.high
        notes["ammonia_interpretation"] = (
            "no ULN reported"
            if ammonia.high is None
            else "supportive"
            if ammonia.value > ammonia.high
            else "normal ammonia: re-evaluate diagnosis"
        )
        ids.append(ammonia.event_id)
    found, found_ids = _precipitants(state, point, config)
    notes["precipitants"] = ", ".join(found) or None
    return notes, (*ids, *found_ids)


def _nearest(
    series: tuple[Observation, ...], point: Observation, within: float
) -> Observation | None:
    span = hours(within)
    near = [o for o in series if abs(o.at - point.at) <= span]
    return min(near, key=lambda o: (abs(o.at - point.at), -o.at.timestamp()), default=None)


def _precipitants(
    state: ParticipantState, point: Observation, config: TrialConfig
) -> tuple[list[str], list[UUID]]:
    """HE-05: infection/bleeding/AKI alerts, Na < 125 mmol/L or K < LLN within ±72 h [DC].

    Sedative and opioid administrations are not facts safetymon receives (the treatment
    vocabulary has none), so that precipitant of RULES.md HE-05 is not looked for.
    """
    span = hours(config.he.precipitant_window_hours)
    found = sorted(
        {
            e.family
            for e in state.episodes
            if e.family.startswith(("INF-", "VB-", "AKI"))
            and e.first_at - span <= point.at <= e.last_at + span
        }
    )
    ids: list[UUID] = []
    # |o.at - point.at| <= span, read by bisection of the time-sorted history, not a scan.
    near = state.between(point.at - span, point.at + span, "sodium", "potassium")
    sodium = [o for o in near if o.kind == "sodium" and o.value < config.he.sodium_low_mmol_l]
    potassium = [o for o in near if o.kind == "potassium" and o.low is not None and o.value < o.low]
    for label, hits in (("Na<125", sodium), ("K<LLN", potassium)):
        if hits:
            found.append(label)
            ids.append(hits[-1].event_id)
    return found, ids


def _note_text(notes: dict[str, Value]) -> str:
    parts = []
    if "ammonia_interpretation" in notes:
        parts.append(f"ammonia {notes['ammonia_umol_l']} µmol/L: {notes['ammonia_interpretation']}")
    if notes.get("precipitants"):
        parts.append(f"possible precipitants: {notes['precipitants']}")
    return "" if not parts else "; " + "; ".join(parts)
