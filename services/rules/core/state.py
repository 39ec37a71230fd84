"""Per-participant projection the rules read (core layer): frozen, JSON round-trippable."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Procedure:
    """A protocol procedure as the rules need it: what, when it started, which fact said so."""

    treatment: str
    started_at: datetime
    event_id: UUID


@dataclass(frozen=True, slots=True)
class AdverseEventState:
    """Latest known values of one AE (by `ae_ref`) and every fact that reported them."""

    ae_ref: str
    term: str
    ctcae_grade: int
    seriousness_criteria: tuple[str, ...]
    planned_admission_for_procedure: bool
    relatedness_uc_msc: str
    expectedness: str
    outcome: str
    onset_at: datetime
    awareness_at: datetime | None
    event_ids: tuple[UUID, ...]


@dataclass(frozen=True, slots=True)
class DeathInfo:
    """A recorded death: when (clinical time) and the fact that recorded it."""

    died_at: datetime
    event_id: UUID
    cause_category: str
    related_ae_ref: str | None


@dataclass(frozen=True, slots=True)
class ParticipantState:
    """What the rules know about one participant; `raised` holds keys already signalled."""

    trial_id: str
    participant_id: str
    site_id: str
    arm: str | None = None
    enrolled_at: datetime | None = None
    procedures: tuple[Procedure, ...] = ()
    adverse_events: tuple[AdverseEventState, ...] = ()  # sorted by ae_ref
    death: DeathInfo | None = None
    raised: frozenset[str] = field(default_factory=frozenset)

    @property
    def key(self) -> tuple[str, str]:
        """Storage key: (trial_id, participant_id)."""
        return (self.trial_id, self.participant_id)

    def adverse_event(self, ae_ref: str) -> AdverseEventState | None:
        """Return the AE with this reference, if one was reported."""
        return next((ae for ae in self.adverse_events if ae.ae_ref == ae_ref), None)

    def with_adverse_event(self, ae: AdverseEventState) -> ParticipantState:
        """Return a copy where `ae` replaces any AE with the same reference."""
        others = [other for other in self.adverse_events if other.ae_ref != ae.ae_ref]
        ordered = tuple(sorted([*others, ae], key=lambda item: item.ae_ref))
        return replace(self, adverse_events=ordered)

    def with_raised(self, key: str) -> ParticipantState:
        """Return a copy that remembers `key` as signalled."""
        return replace(self, raised=self.raised | {key})

    def to_json(self) -> str:
        """Serialise deterministically (sorted keys, no spaces) for storage."""
        return json.dumps(_encode(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ParticipantState:
        """Rebuild a state written by `to_json`."""
        return _decode(json.loads(text))


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _encode(state: ParticipantState) -> dict[str, Any]:
    death = state.death
    return {
        "trial_id": state.trial_id,
        "participant_id": state.participant_id,
        "site_id": state.site_id,
        "arm": state.arm,
        "enrolled_at": None if state.enrolled_at is None else state.enrolled_at.isoformat(),
        "procedures": [
            [p.treatment, p.started_at.isoformat(), str(p.event_id)] for p in state.procedures
        ],
        "adverse_events": [_encode_ae(ae) for ae in state.adverse_events],
        "death": None
        if death is None
        else {
            "died_at": death.died_at.isoformat(),
            "event_id": str(death.event_id),
            "cause_category": death.cause_category,
            "related_ae_ref": death.related_ae_ref,
        },
        "raised": sorted(state.raised),
    }


def _encode_ae(ae: AdverseEventState) -> dict[str, Any]:
    return {
        "ae_ref": ae.ae_ref,
        "term": ae.term,
        "ctcae_grade": ae.ctcae_grade,
        "seriousness_criteria": list(ae.seriousness_criteria),
        "planned_admission_for_procedure": ae.planned_admission_for_procedure,
        "relatedness_uc_msc": ae.relatedness_uc_msc,
        "expectedness": ae.expectedness,
        "outcome": ae.outcome,
        "onset_at": ae.onset_at.isoformat(),
        "awareness_at": None if ae.awareness_at is None else ae.awareness_at.isoformat(),
        "event_ids": [str(event_id) for event_id in ae.event_ids],
    }


def _decode_ae(raw: dict[str, Any]) -> AdverseEventState:
    return AdverseEventState(
        ae_ref=raw["ae_ref"],
        term=raw["term"],
        ctcae_grade=raw["ctcae_grade"],
        seriousness_criteria=tuple(raw["seriousness_criteria"]),
        planned_admission_for_procedure=raw["planned_admission_for_procedure"],
        relatedness_uc_msc=raw["relatedness_uc_msc"],
        expectedness=raw["expectedness"],
        outcome=raw["outcome"],
        onset_at=datetime.fromisoformat(raw["onset_at"]),
        awareness_at=_dt(raw["awareness_at"]),
        event_ids=tuple(UUID(event_id) for event_id in raw["event_ids"]),
    )


def _decode(raw: dict[str, Any]) -> ParticipantState:
    death = raw["death"]
    return ParticipantState(
        trial_id=raw["trial_id"],
        participant_id=raw["participant_id"],
        site_id=raw["site_id"],
        arm=raw["arm"],
        enrolled_at=_dt(raw["enrolled_at"]),
        procedures=tuple(
            Procedure(treatment, datetime.fromisoformat(started), UUID(event_id))
            for treatment, started, event_id in raw["procedures"]
        ),
        adverse_events=tuple(_decode_ae(ae) for ae in raw["adverse_events"]),
        death=None
        if death is None
        else DeathInfo(
            died_at=datetime.fromisoformat(death["died_at"]),
            event_id=UUID(death["event_id"]),
            cause_category=death["cause_category"],
            related_ae_ref=death["related_ae_ref"],
        ),
        raised=frozenset(raw["raised"]),
    )
