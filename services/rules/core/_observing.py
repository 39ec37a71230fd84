"""Observations the clinical rules read, from lab, vitals and assessment payloads (core layer).

Values are kept in canonical SI units: the normalised value ingest adds, or the value as sent
when its unit already is the canonical one; a value in any other unit is not guessed at and
is left out. Observations are kept sorted by (clinical time, kind, event id).
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from functools import lru_cache
from uuid import UUID

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
from services.rules.core._catalogue import ASCITIC_PMN, LAB_KINDS, VITAL_KINDS
from services.rules.core.state import Observation, ParticipantState

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
    kind_unit = LAB_KINDS.get(payload.loinc)
    if (payload.loinc, payload.specimen) == ASCITIC_PMN[:2]:
        kind_unit = ASCITIC_PMN[2:]
    if kind_unit is None:
        return ()
    kind, unit = kind_unit
    value = _canonical(payload.result, unit)
    if value is None:
        return ()
    canonical = payload.result.normalised_value is not None
    low = payload.normalised_reference_low if canonical else payload.reference_low
    high = payload.normalised_reference_high if canonical else payload.reference_high
    return (Observation(kind, at, value, event_id, low, high),)


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


def with_observations(state: ParticipantState, new: tuple[Observation, ...]) -> ParticipantState:
    """Insert observations in (time, kind, event id) order."""
    if not new:
        return state
    merged = list(state.observations)
    for observation in sorted(new, key=_order):
        if not merged or _order(merged[-1]) <= _order(observation):
            merged.append(observation)  # the usual case: the newest result
        else:
            insort(merged, observation, key=_order)
    return replace(state, observations=tuple(merged))


def _order(o: Observation) -> tuple[datetime, str, int]:
    return (o.at, o.kind, o.event_id.int)


def contributes(fact: ClinicalFact, kinds: tuple[str, ...]) -> bool:
    """Tell (cheaply) whether `fact` can have added observations of any of `kinds`.

    Most rules ask this of every fact (through `fresh`), so the kind of a lab and the kinds
    of a set of vital signs are looked up once per distinct LOINC/specimen or set of names
    (issue 5); "" stands for an unmapped one, as before, and is no rule's kind.
    """
    if isinstance(fact, LabResultRecorded):
        payload = fact.payload
        return _lab_kind(payload.loinc, payload.specimen) in kinds
    if isinstance(fact, VitalSignsRecorded):
        return not _vital_kinds(tuple(fact.payload.observations)).isdisjoint(kinds)
    if isinstance(fact, _WEST_HAVEN_FACTS):
        return "wh" in kinds
    return isinstance(fact, FactCorrected)


_WEST_HAVEN_FACTS = (ClinicalAssessmentRecorded, AdverseEventReported, AdverseEventUpdated)


# Safe to remember: pure functions of immutable strings over constant catalogues.
@lru_cache(maxsize=1024)
def _lab_kind(loinc: str, specimen: str | None) -> str:
    if (loinc, specimen) == ASCITIC_PMN[:2]:
        return ASCITIC_PMN[2]
    return LAB_KINDS.get(loinc, ("",))[0]


@lru_cache(maxsize=1024)
def _vital_kinds(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(VITAL_KINDS.get(name, ("",))[0] for name in names)
