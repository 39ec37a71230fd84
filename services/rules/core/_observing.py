"""Observations the clinical rules read, from lab, vitals and assessment payloads (core layer).

Values are kept in canonical SI units: the normalised value ingest adds, or the value as sent
when its unit already is the canonical one; a value in any other unit is not guessed at and
is left out. Observations are kept sorted by (clinical time, kind, event id).
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Mapping
from dataclasses import fields, replace
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from uuid import UUID

from clinical.codes import VITAL_KINDS
from clinical.labs import lab_kind, lab_row
from clinical.organisms import is_common_commensal
from schemas import (
    AdverseEventReported,
    AdverseEventUpdated,
    ClinicalAssessmentRecorded,
    ClinicalFact,
    FactCorrected,
    LabResultRecorded,
    Quantity,
    VitalSignsRecorded,
)
from schemas.facts import (
    ClinicalAssessmentRecordedPayload,
    LabResultRecordedPayload,
    VitalSignsRecordedPayload,
)
from services.rules.core.state import ByKind, Observation, ParticipantState, observation_order

ObservationPayload = (
    LabResultRecordedPayload | VitalSignsRecordedPayload | ClinicalAssessmentRecordedPayload
)


def observations_of(
    payload: LabResultRecordedPayload
    | VitalSignsRecordedPayload
    | ClinicalAssessmentRecordedPayload,
    at: datetime,
    event_id: UUID,
) -> tuple[Observation, ...]:
    """The observations the rules read from one lab, vitals or assessment payload."""
    if isinstance(payload, ClinicalAssessmentRecordedPayload):
        grade = payload.west_haven_grade
        return () if grade is None else (Observation("wh", at, float(grade), event_id),)
    if isinstance(payload, VitalSignsRecordedPayload):
        found = []
        for name, quantity in payload.observations.items():
            kind_unit = VITAL_KINDS.get(name)  # diastolic BP: no rule reads it
            value = None if kind_unit is None else _canonical(quantity, kind_unit[1])
            if kind_unit is not None and value is not None:
                found.append(Observation(kind_unit[0], at, value, event_id))
        return tuple(found)
    return _lab_observation(payload, at, event_id)


def _lab_observation(
    payload: LabResultRecordedPayload, at: datetime, event_id: UUID
) -> tuple[Observation, ...]:
    # Keyed by analyte and specimen (`clinical.labs`): an ascitic or urine result of a blood
    # analyte's code is not that blood observation.
    row = lab_row(payload.loinc, payload.specimen)
    if row is None:
        return ()
    kind = row.kind
    value = _canonical(payload.result, row.unit)
    if value is None:
        return ()
    canonical = payload.result.normalised_value is not None
    low = payload.normalised_reference_low if canonical else payload.reference_low
    high = payload.normalised_reference_high if canonical else payload.reference_high
    organism = payload.organism
    if organism is None:
        return (Observation(kind, at, value, event_id, low, high),)
    commensal = is_common_commensal(organism.code, organism.display)
    return (Observation(kind, at, value, event_id, low, high, organism.code, commensal),)


def _canonical(quantity: Quantity, unit: str) -> float | None:
    if quantity.normalised_value is not None:
        return quantity.normalised_value
    return quantity.value if quantity.unit.lower() == unit.lower() else None


def parse_observation_payload(raw: Mapping[str, object]) -> ObservationPayload:
    """Validate a corrected payload as the lab, vitals or assessment payload it replaces."""
    if "loinc" in raw:
        return LabResultRecordedPayload.model_validate(raw)
    if "observations" in raw:
        return VitalSignsRecordedPayload.model_validate(raw)
    return ClinicalAssessmentRecordedPayload.model_validate(raw)


def with_observations(
    state: ParticipantState, new: tuple[Observation, ...], *, clock: datetime | None = None
) -> ParticipantState:
    """Insert observations in (time, kind, event id) order; `clock`, if given, is the copy's.

    `evolve` sets the new clock in the same copy (one copy per fact, not two).
    """
    if not new:
        return state if clock is None or clock is state.clock else replace(state, clock=clock)
    added = sorted(new, key=observation_order)
    history = state.observations
    newest = not history or observation_order(history[-1]) <= observation_order(added[0])
    if newest:
        observations = history + tuple(added)  # the usual case: the newest results
    else:
        merged = list(history)
        for observation in added:
            if observation_order(merged[-1]) <= observation_order(observation):
                merged.append(observation)
            else:
                insort(merged, observation, key=observation_order)
        observations = tuple(merged)
    by_kind = _regrouped(state, observations, added, newest=newest)
    return _copy(
        state, observations, by_kind=by_kind, clock=state.clock if clock is None else clock
    )


#: `ParticipantState`'s init fields in order, read at once (see `_copy`).
_INIT_FIELDS = tuple(f.name for f in fields(ParticipantState) if f.init)
_READ_ALL = attrgetter(*_INIT_FIELDS)
_AT = {name: _INIT_FIELDS.index(name) for name in ("observations", "by_kind", "clock")}


def _copy(
    state: ParticipantState,
    observations: tuple[Observation, ...],
    *,
    by_kind: ByKind | None,
    clock: datetime | None,
) -> ParticipantState:
    """`replace(state, observations=..., by_kind=..., clock=...)`, for the usual fact.

    It builds the same object `dataclasses.replace` builds (every init field from `state`
    but these three, the non-init memos fresh) without its per-field checks: about a third
    of its cost, on every observation fact.
    """
    values = list(_READ_ALL(state))
    values[_AT["observations"]] = observations
    values[_AT["by_kind"]] = by_kind
    values[_AT["clock"]] = clock
    return ParticipantState(*values)


def _regrouped(
    state: ParticipantState,
    observations: tuple[Observation, ...],
    added: list[Observation],
    *,
    newest: bool,
) -> ByKind | None:
    """`state.by_kind` with `added` inserted as `with_observations` inserts them.

    Each group is its kind's part of the sorted history, so inserting an observation after
    the group's last one not after it in order puts it where the whole history has it;
    when `added` all come after the history (`newest`), that is at each group's end.
    """
    index = state.valid_by_kind()
    if index is None:
        return None  # made when first asked for
    groups = dict(index.groups)
    for observation in added:
        group = groups.get(observation.kind, ())
        if newest or not group or observation_order(group[-1]) <= observation_order(observation):
            groups[observation.kind] = (*group, observation)
        else:
            at = bisect_right(group, observation_order(observation), key=observation_order)
            groups[observation.kind] = (*group[:at], observation, *group[at:])
    return ByKind(observations, groups)


def contributed_kinds(fact: ClinicalFact) -> frozenset[str] | None:
    """The observation kinds `fact` can have added to the projection (None: any kind).

    Most rules ask this of each fact they see (`_alerting.fresh`), and the engine's dispatch
    once per fact (`_dispatch.plan`), so the kind of a lab and the kinds of a set of vital
    signs are looked up once per distinct LOINC/specimen or set of names; ""
    stands for an unmapped one and is no rule's kind. An AE report or update can add a West
    Haven point (HE-03); a correction can replace the observations of any fact, so it may
    have added any kind.
    """
    if isinstance(fact, LabResultRecorded):
        payload = fact.payload
        return _lab_kinds(payload.loinc, payload.specimen)
    if isinstance(fact, VitalSignsRecorded):
        return _vital_kinds(tuple(fact.payload.observations))
    if isinstance(fact, _WEST_HAVEN_FACTS):
        return _WEST_HAVEN
    if isinstance(fact, FactCorrected):
        return None
    return _NONE


_WEST_HAVEN_FACTS = (ClinicalAssessmentRecorded, AdverseEventReported, AdverseEventUpdated)
_WEST_HAVEN: frozenset[str] = frozenset({"wh"})
_NONE: frozenset[str] = frozenset()


# Safe to remember: pure functions of immutable strings over constant catalogues.
@lru_cache(maxsize=1024)
def _lab_kinds(loinc: str, specimen: str | None) -> frozenset[str]:
    return frozenset({lab_kind(loinc, specimen) or ""})


@lru_cache(maxsize=1024)
def _vital_kinds(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(VITAL_KINDS.get(name, ("",))[0] for name in names)
