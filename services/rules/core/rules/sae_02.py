"""SAE-02 the investigator's 24 h sponsor-report clock of each SAE (core layer, one rule).

Source: ICH E6(R2) 4.11.1 (all SAEs reported to the sponsor immediately) operationalised as
24 h from investigator awareness (RULES.md §1 SAE-02 [DC 24 h]; CCMO "not later than within
24 hours"): `sponsor_due = awareness_at + 24 h`; a reminder at due − 4 h (U1 → investigator)
and an overdue alert at due (U0 → investigator, safety officer) unless an
`SAEReportedToSponsor` for that AE arrived first.

Rules never read the clock (DESIGN.md principle 2): time reaches this rule only as
`ClockTicked` facts that the ingest service appends to the log per trial every period, so a
replay of the log fires the same reminders at the same log positions. `evaluate` (clinical
facts) opens a clock when an AE becomes serious and closes it when the AE stops being
serious or disappears; `on_tick` fires what is due. A reminder or alert is at most one tick
period late; its id does not depend on which tick fired it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Final

from schemas import ClinicalFact, ClockTicked, Role, SignalPayload, SignalRaised, Urgency
from services.rules.core.config import TrialConfig, hours
from services.rules.core.rules._cases import any_raised, case_key, case_records
from services.rules.core.rules._clocks import ring
from services.rules.core.rules._shared import ae_values, day0, is_serious, touched_ae
from services.rules.core.rules._triggers import AE_FACTS, on
from services.rules.core.signals import ACTOR, SOURCE, signal_id
from services.rules.core.state import AdverseEventState, ParticipantState, SaeClock

RULE_ID: Final = "SAE-02"
RULE_VERSION: Final = 1
DEADLINE_LABEL: Final = "sponsor report (24 h, ICH E6(R2) 4.11.1)"
Step = tuple[ParticipantState, tuple[SignalRaised, ...]]


def _clock_open(state: ParticipantState) -> bool:
    return bool(state.sae_clocks)


#: AE facts open clocks; while any clock is open every fact re-checks its AE is still
#: serious (without open clocks, a fact that touches no AE leaves the state as it is).
TRIGGERS: Final = on(*AE_FACTS, active=_clock_open)


def evaluate(state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig) -> Step:
    """Open the clock of a case that became serious; close clocks no longer running.

    One clock per case: a follow-up record of a case whose clock opened (or that was
    reported to the sponsor, under any of its records' refs) opens none, and a report of
    any record of the case stops the case's clock.
    """
    kept = tuple(c for c in state.sae_clocks if _running(state, c))
    if kept != state.sae_clocks:
        state = replace(state, sae_clocks=kept)
    ae = touched_ae(state, fact)
    if ae is None or not is_serious(ae):
        return state, ()
    records = case_records(state, ae)
    case = case_key(ae)
    if _reported(state, records) or any_raised(state, f"{RULE_ID}|open", case, records):
        return state, ()
    key = f"{RULE_ID}|open|{case}"
    due = day0(ae, fact) + hours(config.sae.sponsor_report_hours)
    clock = SaeClock(ae.ae_ref, due, ae.serious_since or fact.event_id)
    clocks = tuple(sorted((*state.sae_clocks, clock), key=lambda c: c.ae_ref))
    return replace(state.with_raised(key), sae_clocks=clocks), ()


def on_tick(state: ParticipantState, tick: ClockTicked, *, config: TrialConfig) -> Step:
    """Fire the reminders and overdue alerts that are due at the tick's time."""
    clocks, signals = ring(
        state.sae_clocks,
        now=tick.occurred_at,
        remind=hours(config.sae.reminder_before_hours),
        signal=lambda clock, overdue: _signal(state, tick, clock, overdue=overdue),
    )
    if not signals:
        return state, ()
    return replace(state, sae_clocks=tuple(clocks)), tuple(signals)


def _signal(
    state: ParticipantState, tick: ClockTicked, clock: SaeClock, *, overdue: bool
) -> SignalRaised:
    ae = state.adverse_event(clock.ae_ref)
    kind = "overdue" if overdue else "reminder"
    due = _utc(clock.due_at)
    payload = SignalPayload(
        rule_id=RULE_ID,
        rule_version=RULE_VERSION,
        category="sae",
        title="SAE sponsor report overdue" if overdue else "SAE sponsor report due in 4 h",
        urgency=Urgency.U0 if overdue else Urgency.U1,
        recipients=(Role.INVESTIGATOR, Role.SAFETY_OFFICER) if overdue else (Role.INVESTIGATOR,),
        arm=state.arm,
        reason=(
            f"SAE {clock.ae_ref}: no report to the sponsor recorded "
            + (f"by its 24 h deadline ({due})" if overdue else f"yet; it is due at {due}")
            + " (ICH E6(R2) 4.11.1)"
        ),
        evidence_event_ids=(clock.opened_by, tick.event_id),
        values={
            **({} if ae is None else ae_values(ae)),
            "clock": kind,
            "sponsor_due": clock.due_at.isoformat(),
            "checked_at": tick.occurred_at.isoformat(),
        },
        reporting_deadline=clock.due_at,
        deadline_label=DEADLINE_LABEL,
    )
    return SignalRaised(
        event_id=signal_id(f"{RULE_ID}:{kind}", state.participant_id, (clock.opened_by,)),
        trial_id=state.trial_id,
        site_id=state.site_id,
        participant_id=state.participant_id,
        occurred_at=tick.occurred_at,
        recorded_at=tick.recorded_at,
        source=SOURCE,
        source_ref=f"{RULE_ID}:{kind}:{clock.ae_ref}:{clock.opened_by}",
        actor=ACTOR,
        causation_id=tick.event_id,
        correlation_id=tick.correlation_id or clock.opened_by,
        payload=payload,
    )


def _utc(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _running(state: ParticipantState, clock: SaeClock) -> bool:
    """An open clock's AE is still known and serious and its case not reported yet."""
    ae = state.adverse_event(clock.ae_ref)  # by ref, not by a scan
    if ae is None or not is_serious(ae):
        return False
    return ae.case_id is None or not _reported(state, case_records(state, ae))


def _reported(state: ParticipantState, records: tuple[AdverseEventState, ...]) -> bool:
    return any(record.ae_ref in state.sae_reported for record in records)
