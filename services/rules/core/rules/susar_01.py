"""SUSAR-01 the sponsor's 7- and 15-day SUSAR report clocks (core layer, one rule).

Source: ICH E2A III.A (fatal or life-threatening unexpected adverse drug reactions: notify
the regulator within 7 calendar days of first knowledge, then as complete a report as
possible within 8 more days; any other serious unexpected reaction within 15 days) and EU
CT Regulation 536/2014 Art. 42 (the same deadlines in the EU). RULES.md §1 SAE-04 gives the
due dates; this rule keeps them: a fatal or life-threatening SUSAR candidate opens an
"initial" clock (day 0 + 7 d) and a "complete" clock (day 0 + 15 d), any other one a
"complete" clock; day 0 is investigator awareness, as SAE-02's (`_shared.day0`).

Like SAE-02, time arrives only as `ClockTicked` facts: `on_tick` sends a reminder
`reminder_before_hours` before each deadline (U1 -> safety officer, who holds the sponsor's
reporting duty) and an overdue alert at it (U0 -> safety officer and investigator; notify
escalates an unacknowledged U0). A `SUSARReportedToAuthority` closes clocks of its case:
`initial` the 7-day one, `complete` both, whether it arrives before or after they open. One
clock of each report per case (`_cases`). A clock also closes when its AE stops being a
SUSAR candidate (e.g. causality revised to unrelated).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Final

from schemas import (
    ClinicalFact,
    ClockTicked,
    Role,
    SignalPayload,
    SignalRaised,
    SUSARReportedToAuthority,
    Urgency,
)
from services.rules.core.config import TrialConfig, days, hours
from services.rules.core.rules._cases import case_key, case_of_ref
from services.rules.core.rules._clocks import ring
from services.rules.core.rules._shared import (
    ae_values,
    day0,
    is_fatal,
    is_life_threatening,
    is_susar_candidate,
    touched_ae,
)
from services.rules.core.rules._triggers import AE_FACTS, on
from services.rules.core.signals import ACTOR, SOURCE, signal_id
from services.rules.core.state import AdverseEventState, ParticipantState, SusarClock

RULE_ID: Final = "SUSAR-01"
RULE_VERSION: Final = 1
INITIAL: Final = "initial"
COMPLETE: Final = "complete"
LABELS: Final = {
    INITIAL: "SUSAR initial report (7 d, ICH E2A)",
    COMPLETE: "SUSAR complete report (15 d, ICH E2A)",
}
Step = tuple[ParticipantState, tuple[SignalRaised, ...]]


def _clock_open(state: ParticipantState) -> bool:
    return bool(state.susar_clocks)


#: AE facts open clocks and report facts close them; while a clock is open every fact
#: re-checks that its AE is still a SUSAR candidate.
TRIGGERS: Final = on(*AE_FACTS, SUSARReportedToAuthority, active=_clock_open)


def evaluate(state: ParticipantState, fact: ClinicalFact, *, config: TrialConfig) -> Step:
    """Record a report to the authority; open the clocks of a new SUSAR case; drop stale ones."""
    if isinstance(fact, SUSARReportedToAuthority):
        return _reported(state, fact), ()
    kept = tuple(c for c in state.susar_clocks if _still_susar(state.adverse_event(c.ae_ref)))
    if kept != state.susar_clocks:
        state = replace(state, susar_clocks=kept)
    ae = touched_ae(state, fact)
    if ae is None or not is_susar_candidate(ae):
        return state, ()
    case = case_key(ae)
    key = f"{RULE_ID}|open|{case}"
    if key in state.raised:
        return state, ()
    start = day0(ae, fact)
    wanted = {COMPLETE: days(config.susar.complete_report_days)}
    if is_fatal(ae) or is_life_threatening(ae):
        wanted[INITIAL] = days(config.susar.initial_report_days)
    opened = tuple(
        SusarClock(case, ae.ae_ref, report, start + within, fact.event_id)
        for report, within in wanted.items()
        if not _done(state, case, report)
    )
    clocks = tuple(sorted((*state.susar_clocks, *opened), key=_order))
    return replace(state.with_raised(key), susar_clocks=clocks), ()


def on_tick(state: ParticipantState, tick: ClockTicked, *, config: TrialConfig) -> Step:
    """Fire the reminders and overdue alerts that are due at the tick's time."""
    clocks, signals = ring(
        state.susar_clocks,
        now=tick.occurred_at,
        remind=hours(config.susar.reminder_before_hours),
        signal=lambda clock, overdue: _signal(state, tick, clock, overdue=overdue),
    )
    if not signals:
        return state, ()
    return replace(state, susar_clocks=tuple(clocks)), tuple(signals)


def _reported(state: ParticipantState, fact: SUSARReportedToAuthority) -> ParticipantState:
    """Remember the report (a clock opened later starts closed) and close what it covers."""
    case = case_of_ref(state, fact.payload.ae_ref)
    covered = {INITIAL, COMPLETE} if fact.payload.report == COMPLETE else {INITIAL}
    done = state.susar_reported | {f"{case}|{report}" for report in covered}
    clocks = tuple(c for c in state.susar_clocks if c.case != case or c.report not in covered)
    return replace(state, susar_reported=done, susar_clocks=clocks)


def _done(state: ParticipantState, case: str, report: str) -> bool:
    return f"{case}|{report}" in state.susar_reported


def _still_susar(ae: AdverseEventState | None) -> bool:
    return ae is not None and is_susar_candidate(ae)


def _order(clock: SusarClock) -> tuple[str, datetime]:
    return (clock.case, clock.due_at)


def _signal(
    state: ParticipantState, tick: ClockTicked, clock: SusarClock, *, overdue: bool
) -> SignalRaised:
    ae = state.adverse_event(clock.ae_ref)
    kind = "overdue" if overdue else "reminder"
    label = LABELS.get(clock.report, clock.report)
    due = f"{clock.due_at:%Y-%m-%d %H:%M} UTC"
    payload = SignalPayload(
        rule_id=RULE_ID,
        rule_version=RULE_VERSION,
        category="susar",
        title=f"{label} overdue" if overdue else f"{label} due soon",
        urgency=Urgency.U0 if overdue else Urgency.U1,
        recipients=(Role.SAFETY_OFFICER, Role.INVESTIGATOR) if overdue else (Role.SAFETY_OFFICER,),
        arm=state.arm,
        reason=(
            f"SUSAR {clock.ae_ref}: no {clock.report} report to the authority recorded "
            + (f"by its deadline ({due})" if overdue else f"yet; it is due at {due}")
            + " (ICH E2A; EU CT Reg. 536/2014 Art. 42)"
        ),
        evidence_event_ids=(clock.opened_by, tick.event_id),
        values={
            **({} if ae is None else ae_values(ae)),
            "clock": f"{clock.report}_{kind}",
            "report": clock.report,
            "authority_due": clock.due_at.isoformat(),
            "checked_at": tick.occurred_at.isoformat(),
        },
        reporting_deadline=clock.due_at,
        deadline_label=label,
    )
    name = f"{RULE_ID}:{clock.report}:{kind}"
    return SignalRaised(
        event_id=signal_id(name, state.participant_id, (clock.opened_by,)),
        trial_id=state.trial_id,
        site_id=state.site_id,
        participant_id=state.participant_id,
        occurred_at=tick.occurred_at,
        recorded_at=tick.recorded_at,
        source=SOURCE,
        source_ref=f"{name}:{clock.case}:{clock.opened_by}"[:200],
        actor=ACTOR,
        causation_id=tick.event_id,
        correlation_id=tick.correlation_id or clock.opened_by,
        payload=payload,
    )
