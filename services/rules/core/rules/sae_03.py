"""SAE-03 death (core layer, one rule).

Source: ICH E2A (death is a seriousness criterion; fatal reactions carry the shortest
reporting clocks) and RULES.md §1 SAE-03: a DeathRecorded fact, an AE with outcome fatal or
CTCAE grade 5 (or the E2A 'death' criterion). `procedure_proximate` is true when death falls
within 7 days after the start of any UC-MSC infusion or plasma exchange [DC 7 d; closed
interval]; it feeds the STOP-03 stopping rule. Fires once per participant.

For the AE routes the moment of death is only known to lie between AE onset and the time
safetymon learned of it, so proximity is tested against that whole interval (conservative).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from uuid import UUID

from clinical import windows
from schemas import (
    ClinicalFact,
    DeathRecorded,
    Outcome,
    Role,
    SignalPayload,
    SignalRaised,
    Treatment,
    Urgency,
)
from services.rules.core.rules._shared import event_type, is_fatal, touched_ae
from services.rules.core.rules._triggers import AE_FACTS, on
from services.rules.core.signals import build_signal
from services.rules.core.state import ParticipantState, Procedure

RULE_ID: Final = "SAE-03"
RULE_VERSION: Final = 1
KEY: Final = RULE_ID
PROXIMITY_WINDOW: Final = timedelta(days=7)
REPORT_WITHIN: Final = timedelta(hours=24)
DEADLINE_LABEL: Final = "sponsor report (24 h, ICH E6(R2) 4.11.1)"
_PROTOCOL_PROCEDURES = frozenset({Treatment.UC_MSC_INFUSION.value, Treatment.PLASMA_EXCHANGE.value})


@dataclass(frozen=True, slots=True)
class _Death:
    route: str
    earliest: datetime  # death happened no earlier than this ...
    latest: datetime  # ... and no later than this (equal when the time of death is known)
    day0: datetime
    evidence: tuple[UUID, ...]


#: A recorded death, or the AE a report or update just set (`touched_ae`).
TRIGGERS: Final = on(*AE_FACTS, DeathRecorded)


def evaluate(
    state: ParticipantState, fact: ClinicalFact
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise SAE-03 the first time any route reports this participant's death."""
    if KEY in state.raised:
        return state, ()
    death = _death_reported(state, fact)
    if death is None:
        return state, ()
    procedure = _proximate_procedure(state.procedures, death)
    evidence = death.evidence + (() if procedure is None else (procedure.event_id,))
    payload = SignalPayload(
        rule_id=RULE_ID,
        rule_version=RULE_VERSION,
        category="death",
        title="Death",
        urgency=Urgency.U0,
        recipients=(Role.INVESTIGATOR, Role.SAFETY_OFFICER, Role.DSMB_CHAIR),
        arm=state.arm,
        reason=_reason(death, procedure),
        evidence_event_ids=evidence,
        values={
            "death_route": death.route,
            "procedure_proximate": procedure is not None,
            "proximate_procedure": None if procedure is None else procedure.treatment,
            "cause_category": None if state.death is None else state.death.cause_category,
            "trigger_event_type": event_type(fact),
        },
        reporting_deadline=death.day0 + REPORT_WITHIN,
        deadline_label=DEADLINE_LABEL,
    )
    return state.with_raised(KEY), (build_signal(fact, payload),)


def _death_reported(state: ParticipantState, fact: ClinicalFact) -> _Death | None:
    if isinstance(fact, DeathRecorded) and state.death is not None:
        died, related = state.death.died_at, state.death.related_ae_ref
        ae = None if related is None else state.adverse_event(related)
        evidence = (fact.event_id, *(() if ae is None else ae.event_ids))
        return _Death(
            "death_recorded", died, died, fact.recorded_at, tuple(dict.fromkeys(evidence))
        )
    ae = touched_ae(state, fact)
    if ae is None or not is_fatal(ae):
        return None
    route = (
        "ae_outcome_fatal"
        if ae.outcome == Outcome.FATAL.value
        else "ae_grade_5"
        if ae.ctcae_grade == 5
        else "ae_seriousness_death"
    )
    latest = max(ae.onset_at, fact.recorded_at)
    return _Death(route, ae.onset_at, latest, ae.awareness_at or fact.recorded_at, ae.event_ids)


def _proximate_procedure(procedures: tuple[Procedure, ...], death: _Death) -> Procedure | None:
    """Return the latest UC-MSC/PE start whose 7-day window can contain the death, if any."""
    return windows.latest(
        p
        for p in procedures
        if p.treatment in _PROTOCOL_PROCEDURES
        and p.started_at <= death.latest
        and death.earliest <= p.started_at + PROXIMITY_WINDOW
    )


def _reason(death: _Death, procedure: Procedure | None) -> str:
    proximity = (
        "no UC-MSC infusion or plasma exchange started in the 7 days before"
        if procedure is None
        else f"within 7 days after the start of {procedure.treatment} (procedure-proximate)"
    )
    route = death.route.replace("_", " ")
    return f"death reported ({route}); {proximity}; inform the DSMB chair within 24 h"
