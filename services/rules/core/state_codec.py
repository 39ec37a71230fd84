"""JSON form of `ParticipantState` (core layer): deterministic, and tolerant of older states.

Histories are written as compact arrays to keep the stored row small. Fields added after a
state was stored decode to their defaults, so a state written by an earlier version of the
service loads unchanged (its histories simply start empty).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from services.rules.core.state import (
    AdverseEvents,
    AdverseEventState,
    DeathInfo,
    Episode,
    Observation,
    ParticipantState,
    Procedure,
    SaeClock,
    SignalRecord,
    SusarClock,
)


def encode_state(state: ParticipantState) -> str:
    """Serialise deterministically (sorted keys, no spaces)."""
    return json.dumps(_encode(state), sort_keys=True, separators=(",", ":"))


def decode_state(text: str) -> ParticipantState:
    """Rebuild a state written by `encode_state` or by an earlier version of it."""
    return _decode(json.loads(text))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _encode(state: ParticipantState) -> dict[str, Any]:
    death = state.death
    return {
        "trial_id": state.trial_id,
        "participant_id": state.participant_id,
        "site_id": state.site_id,
        "arm": state.arm,
        "enrolled_at": _iso(state.enrolled_at),
        "procedures": [_encode_procedure(p) for p in state.procedures],
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
        "observations": [_encode_observation(o) for o in state.observations],
        "episodes": [
            [
                e.family,
                e.first_at.isoformat(),
                e.last_at.isoformat(),
                e.level,
                str(e.fired_by),
                e.fired_at.isoformat(),
            ]
            for e in state.episodes
        ],
        "clock": _iso(state.clock),
        # Written only when set, so states without them keep their stored bytes.
        **({} if state.baseline_meld is None else {"baseline_meld": state.baseline_meld}),
        **(
            {"baselines": [_encode_observation(o) for o in state.baselines]}
            if state.baselines
            else {}
        ),
        **(
            {"live_signals": [_encode_record(r) for r in state.live_signals]}
            if state.live_signals
            else {}
        ),
        **(
            {"corrections": [[str(a), str(b)] for a, b in state.corrections]}
            if state.corrections
            else {}
        ),
        **(
            {
                "sae_clocks": [
                    [c.ae_ref, c.due_at.isoformat(), str(c.opened_by), c.reminded]
                    for c in state.sae_clocks
                ]
            }
            if state.sae_clocks
            else {}
        ),
        **({"sae_reported": sorted(state.sae_reported)} if state.sae_reported else {}),
        **(
            {
                "susar_clocks": [
                    [c.case, c.ae_ref, c.report, c.due_at.isoformat(), str(c.opened_by), c.reminded]
                    for c in state.susar_clocks
                ]
            }
            if state.susar_clocks
            else {}
        ),
        **({"susar_reported": sorted(state.susar_reported)} if state.susar_reported else {}),
    }


def _encode_record(r: SignalRecord) -> list[Any]:
    return [
        str(r.signal_id),
        r.rule_id,
        r.rule_version,
        r.category,
        r.title,
        r.urgency,
        list(r.recipients),
        r.level,
        r.at.isoformat(),
        str(r.cause_id),
        [str(i) for i in r.evidence],
        list(r.keys),
        list(r.families),
    ]


def _decode_record(raw: list[Any]) -> SignalRecord:
    signal_id, rule_id, version, category, title, urgency, recipients, level, at, *rest = raw
    cause_id, evidence, keys, families = rest
    return SignalRecord(
        UUID(signal_id),
        rule_id,
        version,
        category,
        title,
        urgency,
        tuple(recipients),
        level,
        datetime.fromisoformat(at),
        UUID(cause_id),
        tuple(UUID(i) for i in evidence),
        tuple(keys),
        tuple(families),
    )


def _encode_observation(o: Observation) -> list[Any]:
    encoded = [o.kind, o.at.isoformat(), o.value, str(o.event_id), o.low, o.high]
    # A culture's organism only when there is one: the other observations keep six fields.
    return encoded if o.organism is None else [*encoded, o.organism, o.commensal]


def _encode_procedure(p: Procedure) -> list[str | None]:
    # Three items for a procedure without an end, as states stored before `ended_at` were.
    head: list[str | None] = [p.treatment, p.started_at.isoformat(), str(p.event_id)]
    return head if p.ended_at is None else [*head, p.ended_at.isoformat()]


def _encode_ae(ae: AdverseEventState) -> dict[str, Any]:
    encoded = {
        "ae_ref": ae.ae_ref,
        "term": ae.term,
        "ctcae_grade": ae.ctcae_grade,
        "seriousness_criteria": list(ae.seriousness_criteria),
        "planned_admission_for_procedure": ae.planned_admission_for_procedure,
        "relatedness_uc_msc": ae.relatedness_uc_msc,
        "expectedness": ae.expectedness,
        "outcome": ae.outcome,
        "onset_at": ae.onset_at.isoformat(),
        "awareness_at": _iso(ae.awareness_at),
        "event_ids": [str(event_id) for event_id in ae.event_ids],
    }
    if ae.meddra_llt_code is not None:
        encoded["meddra_llt_code"] = ae.meddra_llt_code
    if ae.serious_since is not None:
        encoded["serious_since"] = str(ae.serious_since)
    if ae.relatedness_plasma_exchange != "not_applicable":
        encoded["relatedness_plasma_exchange"] = ae.relatedness_plasma_exchange
    if ae.case_id is not None:
        encoded["case_id"] = ae.case_id
    return encoded


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
        meddra_llt_code=raw.get("meddra_llt_code"),
        serious_since=None if raw.get("serious_since") is None else UUID(raw["serious_since"]),
        relatedness_plasma_exchange=raw.get("relatedness_plasma_exchange", "not_applicable"),
        case_id=raw.get("case_id"),
    )


def _decode_procedure(raw: list[str]) -> Procedure:
    treatment, started, event_id, *rest = raw
    ended = _dt(rest[0]) if rest else None
    return Procedure(treatment, datetime.fromisoformat(started), UUID(event_id), ended)


def _decode_observation(raw: list[Any]) -> Observation:
    kind, at, value, event_id, low, high, *organism = raw
    return Observation(
        kind, datetime.fromisoformat(at), value, UUID(event_id), low, high, *organism
    )


def _decode_observations(raw: Iterable[list[Any]]) -> tuple[Observation, ...]:
    """A history's observations, each id and time string parsed once.

    The observations of one fact share its event id and clinical time (a lab panel, a set
    of vital signs), and parsing them is most of a long state's load (a replay
    resuming from a checkpoint decodes thousands of ~500-observation states). Equal
    immutable values, so sharing the objects changes nothing.
    """
    ids: dict[str, UUID] = {}
    times: dict[str, datetime] = {}
    decoded = []
    for kind, at, value, event_id, low, high, *organism in raw:
        when = times.get(at)
        if when is None:
            when = times[at] = datetime.fromisoformat(at)
        identity = ids.get(event_id)
        if identity is None:
            identity = ids[event_id] = UUID(event_id)
        decoded.append(Observation(kind, when, value, identity, low, high, *organism))
    return tuple(decoded)


def _decode_episode(raw: list[Any]) -> Episode:
    family, first, last, level, fired_by, fired_at = raw
    return Episode(
        family,
        datetime.fromisoformat(first),
        datetime.fromisoformat(last),
        level,
        UUID(fired_by),
        datetime.fromisoformat(fired_at),
    )


def _decode(raw: dict[str, Any]) -> ParticipantState:
    death = raw["death"]
    return ParticipantState(
        trial_id=raw["trial_id"],
        participant_id=raw["participant_id"],
        site_id=raw["site_id"],
        arm=raw["arm"],
        enrolled_at=_dt(raw["enrolled_at"]),
        procedures=tuple(_decode_procedure(p) for p in raw["procedures"]),
        adverse_events=AdverseEvents.of(_decode_ae(ae) for ae in raw["adverse_events"]),
        death=None
        if death is None
        else DeathInfo(
            died_at=datetime.fromisoformat(death["died_at"]),
            event_id=UUID(death["event_id"]),
            cause_category=death["cause_category"],
            related_ae_ref=death["related_ae_ref"],
        ),
        raised=frozenset(raw["raised"]),
        observations=_decode_observations(raw.get("observations", ())),
        episodes=tuple(_decode_episode(e) for e in raw.get("episodes", ())),
        clock=_dt(raw.get("clock")),
        baseline_meld=raw.get("baseline_meld"),
        baselines=tuple(_decode_observation(o) for o in raw.get("baselines", ())),
        live_signals=tuple(_decode_record(r) for r in raw.get("live_signals", ())),
        corrections=tuple((UUID(a), UUID(b)) for a, b in raw.get("corrections", ())),
        sae_clocks=tuple(
            SaeClock(ref, datetime.fromisoformat(due), UUID(opened), reminded)
            for ref, due, opened, reminded in raw.get("sae_clocks", ())
        ),
        sae_reported=frozenset(raw.get("sae_reported", ())),
        susar_clocks=tuple(
            SusarClock(case, ref, report, datetime.fromisoformat(due), UUID(opened), reminded)
            for case, ref, report, due, opened, reminded in raw.get("susar_clocks", ())
        ),
        susar_reported=frozenset(raw.get("susar_reported", ())),
    )
