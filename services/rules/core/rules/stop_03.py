"""STOP-03 sentinel pause: related death or grade 4 event within 7 days of a procedure.

Core layer, one rule. Source: RULES.md §8.2 STOP-03 [DC]: a death or a grade 4 event
<= 7 days after a UC-MSC infusion or a plasma-exchange session (closed interval from the
procedure start, RULES.md §0.2), at least possibly related → pause procedures in that arm
pending an ad hoc DSMB review: U0 to investigator, safety officer and DSMB chair.

"At least possibly related" reads the AE's causality to the procedure that preceded it
(UC-MSC: `relatedness_uc_msc`; PE: `relatedness_plasma_exchange`) ∈ {possible, probable,
definite} [DC, as SAE-04]. A death counts through the AE it names (`related_ae_ref`), or
else through any fatal AE of the participant. Fires once per AE, and once for a death not
already signalled through its AE. The arm-level rules STOP-01/02 and the SUSAR-count part
of STOP-04 are aggregate: they belong to the DSMB report (services/report), not to this
service, which sees one participant at a time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final
from uuid import UUID

from clinical import windows
from schemas import ClinicalFact, DeathRecorded, Role, SignalRaised, Urgency
from services.rules.core.config import TrialConfig, days
from services.rules.core.rules._alerting import Finding, emit, late_values
from services.rules.core.rules._procedures import MSC, PE, procedure_values
from services.rules.core.rules._shared import SUSPECTED, ae_values, is_fatal, touched_ae
from services.rules.core.rules._triggers import AE_FACTS, on
from services.rules.core.state import AdverseEventState, ParticipantState, Procedure

RULE_ID: Final = "STOP-03"
RULE_VERSION: Final = 1
GRADE_4: Final = 4
RECIPIENTS: Final = (Role.INVESTIGATOR, Role.SAFETY_OFFICER, Role.DSMB_CHAIR)
TITLE: Final = "Sentinel pause: related death or grade 4 event after a procedure"


def _related(ae: AdverseEventState, procedure: Procedure) -> bool:
    causality = (
        ae.relatedness_uc_msc if procedure.treatment == MSC else ae.relatedness_plasma_exchange
    )
    return causality in SUSPECTED


def _sentinel_procedure(
    state: ParticipantState, ae: AdverseEventState, at: datetime, config: TrialConfig
) -> Procedure | None:
    """The latest UC-MSC or PE started <= 7 d before `at` that `ae` is related to."""
    span = days(config.stopping.sentinel_days)
    return windows.latest(
        p
        for p in state.procedures
        if p.treatment in {MSC, PE}
        and p.started_at <= at <= p.started_at + span
        and _related(ae, p)
    )


#: A recorded death, or the AE a report or update just set (`touched_ae`).
TRIGGERS: Final = on(*AE_FACTS, DeathRecorded)


def evaluate(
    state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    """Raise STOP-03 for a related grade >= 4 AE or death within 7 days of a procedure."""
    if isinstance(fact, DeathRecorded):
        return _death(state, fact, config)
    ae = touched_ae(state, fact)
    if ae is None or (ae.ctcae_grade < GRADE_4 and not is_fatal(ae)):
        return state, ()
    key = f"{RULE_ID}|ae:{ae.ae_ref}"
    procedure = _sentinel_procedure(state, ae, ae.onset_at, config)
    if key in state.raised or procedure is None:
        return state, ()
    what = "death" if is_fatal(ae) else f"CTCAE grade {ae.ctcae_grade} event"
    return _fire(
        state, fact, key, ae, procedure, what=what, at=ae.onset_at, ids=ae.event_ids, config=config
    )


def _death(
    state: ParticipantState, fact: DeathRecorded, config: TrialConfig
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    key = f"{RULE_ID}|death"
    ref = fact.payload.related_ae_ref
    if key in state.raised:
        return state, ()
    if ref is not None:  # looked up by ref; a scan only for a death without a related AE
        named = state.adverse_event(ref)
        candidates = [] if named is None else [named]
    else:
        candidates = [ae for ae in state.adverse_events if is_fatal(ae)]
    for ae in candidates:
        if f"{RULE_ID}|ae:{ae.ae_ref}" in state.raised:
            return state.with_raised(key), ()
        procedure = _sentinel_procedure(state, ae, fact.occurred_at, config)
        if procedure is not None:
            ids = (fact.event_id, *ae.event_ids)
            return _fire(
                state,
                fact,
                key,
                ae,
                procedure,
                what="death",
                at=fact.occurred_at,
                ids=ids,
                config=config,
            )
    return state, ()


def _fire(  # noqa: PLR0913 - the finding's parts, keyword-only after the first three
    state: ParticipantState,
    fact: ClinicalFact,
    key: str,
    ae: AdverseEventState,
    procedure: Procedure,
    *,
    what: str,
    at: datetime,
    ids: tuple[UUID, ...],
    config: TrialConfig,
) -> tuple[ParticipantState, tuple[SignalRaised, ...]]:
    tag = procedure_values(procedure, at, window="7 d after procedure start")
    finding = Finding(
        RULE_ID,
        RULE_VERSION,
        "stopping_rule",
        TITLE,
        Urgency.U0,
        RECIPIENTS,
        f"{what} (AE {ae.ae_ref} '{ae.term}') {tag['hours_after_procedure_start']} h after the "
        f"start of {procedure.treatment}, at least possibly related: pause procedures in arm "
        f"{state.arm} pending an ad hoc DSMB review (STOP-03)",
        (*ids, procedure.event_id),
        {**ae_values(ae), **tag, "sentinel": what, "arm": state.arm, **late_values(fact, config)},
        (fact.event_id,),
    )
    state = state.with_raised(key)
    return state, (emit(state, fact, finding),)
