"""Fold arriving facts into the participant projection (core layer; pure).

`evolve` records what a fact says (enrolment, treatments, labs, vitals, West Haven grades,
AEs, death, corrections); `_history.prune` bounds the histories afterwards.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from clinical.adverse_events import is_serious
from clinical.codes import HE_LLT, HE_TERMS, term_in
from schemas import (
    AdverseEventPayload,
    AdverseEventReported,
    AdverseEventUpdated,
    ClinicalAssessmentRecorded,
    ClinicalFact,
    DeathRecorded,
    FactCorrected,
    LabResultRecorded,
    ParticipantEnrolled,
    SAEReportedToSponsor,
    TreatmentAdministered,
    VitalSignsRecorded,
)
from services.rules.core._observing import (
    observations_of,
    parse_observation_payload,
    with_observations,
)
from services.rules.core.state import (
    AdverseEventState,
    DeathInfo,
    Observation,
    ParticipantState,
    Procedure,
)

#: Most a CTCAE grade can say about West Haven (grade 5 = death; coma is WH 4).
_MAX_WEST_HAVEN = 4


def initial_state(fact: ClinicalFact) -> ParticipantState:
    """State of a participant first seen in `fact` (possibly before enrolment: arm unknown)."""
    return ParticipantState(fact.trial_id, fact.participant_id, fact.site_id)


def evolve(state: ParticipantState | None, fact: ClinicalFact) -> ParticipantState:
    """Update the projection with what `fact` says; facts the rules ignore leave it unchanged."""
    before = state or initial_state(fact)
    # The clock that prunes histories never runs ahead of when a fact was recorded, so one
    # mistyped future date cannot wipe the history.
    seen = min(fact.occurred_at, fact.recorded_at)
    clock = seen if before.clock is None or seen > before.clock else before.clock
    if isinstance(fact, _OBSERVING):  # most facts: one copy of the state, clock included
        found = observations_of(fact.payload, fact.occurred_at, fact.event_id)
        current = with_observations(before, found, clock=clock)
    else:
        current = _record(before, fact)
        if current.clock is not clock:
            current = replace(current, clock=clock)
    if _baselines_stand(before, current, fact=fact):
        return current
    return _with_baselines(current)


_OBSERVING = (LabResultRecorded, VitalSignsRecorded, ClinicalAssessmentRecorded)


def _baselines_stand(before: ParticipantState, after: ParticipantState, fact: ClinicalFact) -> bool:
    """Tell whether `_with_baselines` would leave `after` as it is, so `evolve` can skip it.

    Recomputing the baselines on every fact scanned the pre-enrolment history each time.
    They stand when enrolment and the observations before it are as they were: `after` has
    the very same observations, or `fact` only added results at or after enrolment. Anything
    else (an enrolment, a correction, an HE AE's West Haven point, a late pre-enrolment
    result) recomputes them in full. Why that is enough (every state the fold hands `evolve`
    holds its baselines, and pruning never splits a kind's same-time observations) is
    checked fact by fact in tests/unit/rules/test_fold_shortcuts.py.
    """
    enrolled = after.enrolled_at
    if enrolled is None:
        return True  # no baselines before randomisation
    if before.enrolled_at != enrolled:
        return False
    if after.observations is before.observations:
        return True
    return isinstance(fact, _OBSERVING) and fact.occurred_at >= enrolled


def _record(current: ParticipantState, fact: ClinicalFact) -> ParticipantState:  # noqa: PLR0911 - one branch per fact type
    if isinstance(fact, ParticipantEnrolled):
        return replace(
            current,
            arm=fact.payload.arm.value,
            enrolled_at=fact.occurred_at,
            site_id=fact.site_id,
            baseline_meld=fact.payload.baseline_meld,
        )
    if isinstance(fact, TreatmentAdministered):
        payload = fact.payload
        procedure = Procedure(
            payload.treatment.value, fact.occurred_at, fact.event_id, payload.ended_at
        )
        return replace(current, procedures=(*current.procedures, procedure))
    if isinstance(fact, AdverseEventReported | AdverseEventUpdated):
        prior = current.adverse_event(fact.payload.ae_ref)
        event_ids = (*(() if prior is None else prior.event_ids), fact.event_id)
        ae = ae_state(fact.payload, fact.occurred_at, event_ids)
        return _with_ae(current, ae, prior, fact.event_id)
    if isinstance(fact, DeathRecorded) and current.death is None:
        info = DeathInfo(
            fact.occurred_at,
            fact.event_id,
            fact.payload.cause_category,
            fact.payload.related_ae_ref,
        )
        return replace(current, death=info)
    if isinstance(fact, FactCorrected):
        return _correct(current, fact)
    if isinstance(fact, SAEReportedToSponsor):
        # Stops the SAE-02 clock of that AE (RULES.md §1), now or when it would open.
        ref = fact.payload.ae_ref
        clocks = tuple(c for c in current.sae_clocks if c.ae_ref != ref)
        return replace(current, sae_reported=current.sae_reported | {ref}, sae_clocks=clocks)
    return current


def _with_baselines(state: ParticipantState) -> ParticipantState:
    """Remember the last observation of each kind before randomisation (RULES.md §0.2).

    Later results win; a corrected baseline result replaces it (same specimen time). A
    retracted one stays: baselines are never pruned or recomputed from less history.
    """
    if state.enrolled_at is None:
        return state
    split = bisect_left(state.observations, state.enrolled_at, key=_time)
    if split == 0:
        return state
    latest = {o.kind: o for o in state.baselines}
    for observation in state.observations[:split]:  # oldest first: the latest wins
        known = latest.get(observation.kind)
        if known is None or observation.at >= known.at:
            latest[observation.kind] = observation
    baselines = tuple(sorted(latest.values(), key=_kind))
    return state if baselines == state.baselines else replace(state, baselines=baselines)


def _time(observation: Observation) -> datetime:
    return observation.at


def _kind(observation: Observation) -> str:
    return observation.kind


def ae_state(
    payload: AdverseEventPayload, onset_at: datetime, event_ids: tuple[UUID, ...]
) -> AdverseEventState:
    """Project an AE payload (report, update or corrected replacement)."""
    return AdverseEventState(
        ae_ref=payload.ae_ref,
        term=payload.term,
        ctcae_grade=payload.ctcae_grade,
        seriousness_criteria=tuple(c.value for c in payload.seriousness_criteria),
        planned_admission_for_procedure=payload.planned_admission_for_procedure,
        relatedness_uc_msc=payload.relatedness_uc_msc.value,
        expectedness=payload.expectedness.value,
        outcome=payload.outcome.value,
        onset_at=onset_at,
        awareness_at=payload.awareness_at,
        event_ids=event_ids,
        meddra_llt_code=payload.meddra_llt_code,
        relatedness_plasma_exchange=payload.relatedness_plasma_exchange.value,
        case_id=payload.case_id,
    )


def is_he_ae(ae: AdverseEventState) -> bool:
    """RULES.md HE-03: an AE reported as hepatic encephalopathy, encephalopathy or coma."""
    return term_in(ae.term, ae.meddra_llt_code, terms=HE_TERMS, llts=HE_LLT)


def _with_ae(
    state: ParticipantState, ae: AdverseEventState, prior: AdverseEventState | None, event_id: UUID
) -> ParticipantState:
    """Store the AE; an HE AE whose grade rose also becomes a West Haven point (HE-03)."""
    updated = _stored(state, ae, prior, event_id)
    if prior is not None and is_he_ae(prior) and prior.ctcae_grade >= ae.ctcae_grade:
        return updated
    return _with_point(updated, ae, event_id)


def _stored(
    state: ParticipantState, ae: AdverseEventState, prior: AdverseEventState | None, event_id: UUID
) -> ParticipantState:
    """Store the AE, remembering the fact that first made it serious."""
    if prior is not None and (prior.serious_since is not None or is_serious(prior)):
        since = prior.serious_since
    else:
        since = event_id if is_serious(ae) else None
    return state.with_adverse_event(replace(ae, serious_since=since))


def _with_point(state: ParticipantState, ae: AdverseEventState, event_id: UUID) -> ParticipantState:
    """Add the West Haven point an HE AE stands for (HE-03); other AEs add none."""
    if not is_he_ae(ae):
        return state
    grade = float(min(ae.ctcae_grade, _MAX_WEST_HAVEN))  # WH1->G1 ... WH4->G4 [DC]
    return with_observations(state, (Observation("wh", ae.onset_at, grade, event_id),))


def _correct(state: ParticipantState, fact: FactCorrected) -> ParticipantState:
    """Apply a correction of an AE's latest report or of an observation-bearing fact.

    An observation's correction replaces its values (under the correction's event id, so
    the rules evaluate it as new); a retraction removes them. Ingest makes every correction
    name the original fact, so a second correction of the same fact is resolved through
    `state.corrections` to whatever stands for it now. Corrections of other facts do not
    change what the rules read yet.
    """
    if not correction_applies(state, fact):
        return state
    original = fact.payload.supersedes_event_id
    target = current_id(state, original)
    if state.death is not None and state.death.event_id == target:
        return replace(state, death=None)  # a death recorded in error (retraction only)
    if fact.payload.replacement is not None:
        aliases = {**dict(state.corrections), original: fact.event_id}
        state = replace(state, corrections=tuple(sorted(aliases.items(), key=str)))
    # The first AE by ref whose latest report is the target, found by its ids (no scan).
    ae = next((a for a in state.adverse_events.holding(target) if a.event_ids[-1] == target), None)
    if ae is None:
        return _correct_observations(state, fact, target)
    return _correct_ae(state, fact, ae)


def _correct_ae(
    state: ParticipantState, fact: FactCorrected, ae: AdverseEventState
) -> ParticipantState:
    """Replace (or withdraw) an AE's latest report, and the West Haven point it made.

    An HE AE's report may have added a point (HE-03): it goes with the report, and the
    corrected AE adds its own under the correction's event id when it still implies one,
    as an observation's correction does (the rules then evaluate it as new).
    """
    target = ae.event_ids[-1]
    made = any(o.event_id == target for o in state.observations)
    if made:
        kept = tuple(o for o in state.observations if o.event_id != target)
        state = replace(state, observations=kept)
    if fact.payload.replacement is None:
        return replace(state, adverse_events=state.adverse_events.without(ae.ae_ref))
    payload = AdverseEventPayload.model_validate(fact.payload.replacement)
    corrected = ae_state(payload, ae.onset_at, (*ae.event_ids, fact.event_id))
    corrected = replace(corrected, ae_ref=ae.ae_ref)
    if not made:
        return _with_ae(state, corrected, ae, fact.event_id)
    stored = _stored(state, corrected, ae, fact.event_id)
    if not _still_rises(state, corrected, ae):
        return stored
    return _with_point(stored, corrected, fact.event_id)


def _still_rises(
    state: ParticipantState, corrected: AdverseEventState, superseded: AdverseEventState
) -> bool:
    """Tell whether a corrected report still raises the grade its superseded one raised.

    The superseded report made a West Haven point, so it rose above the AE as it stood
    before: a grade at least as high still does. The AE before it is not kept, so a lower
    grade is compared with the AE's latest remaining point (none left: it is the first).
    """
    if corrected.ctcae_grade >= superseded.ctcae_grade:
        return True
    ids = set(superseded.event_ids)
    earlier = [o for o in state.series("wh") if o.event_id in ids]
    return not earlier or earlier[-1].value < corrected.ctcae_grade


def current_id(state: ParticipantState, original: UUID) -> UUID:
    """The event id that stands for `original` now (its latest correction, or itself)."""
    return dict(state.corrections).get(original, original)


def correction_applies(state: ParticipantState, fact: FactCorrected) -> bool:
    """Tell whether `_correct` changes what the rules read (the target is known and current).

    Only then can signals resting on the superseded fact be re-evaluated: a correction of
    an unknown fact, or of an AE report that is no longer the AE's latest, changes nothing
    (not even the West Haven point it made: HE-03). Only an AE known from its one report
    (and corrections of it) can be retracted: the state before a retracted *update* is not
    kept, so retracting an update changes nothing. A recorded death can be retracted
    (entered in error).
    """
    original = fact.payload.supersedes_event_id
    target = current_id(state, original)
    ae = state.adverse_event_of(target)
    if ae is not None:
        latest = ae.event_ids[-1] == target
        return latest and (fact.payload.replacement is not None or ae.event_ids[0] == original)
    if any(o.event_id == target for o in state.observations):
        return True
    if state.death is not None and state.death.event_id == target:
        # Only a retraction: a corrected time or cause of death is not re-evaluated yet.
        return fact.payload.replacement is None
    return False


def _correct_observations(
    state: ParticipantState, fact: FactCorrected, target: UUID
) -> ParticipantState:
    old = [o for o in state.observations if o.event_id == target]
    kept = tuple(o for o in state.observations if o.event_id != target)
    state = replace(state, observations=kept)
    raw = fact.payload.replacement
    if raw is None:
        return state
    payload = parse_observation_payload(raw)
    return with_observations(state, observations_of(payload, old[0].at, fact.event_id))
