"""Procedure windows of RULES.md §4.1 (core layer): which UC-MSC or PE a time belongs to.

The windows themselves are `clinical.windows` (shared with the DSMB report); this module
applies them to a participant's state with the trial configuration's lengths, and tags
findings: every infection-family signal says whether it follows a UC-MSC infusion or PE
within its infection window (INF-07), which one, when it started and how many hours before.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from clinical import windows
from schemas import Treatment
from services.rules.core.config import ProcedureConfig, TrialConfig, hours
from services.rules.core.rules._alerting import Value
from services.rules.core.state import ParticipantState, Procedure

MSC = Treatment.UC_MSC_INFUSION.value
PE = Treatment.PLASMA_EXCHANGE.value
RBC = Treatment.RBC_TRANSFUSION.value
VASOPRESSOR = Treatment.VASOPRESSOR.value


@lru_cache(maxsize=16)
def _lengths(procedures: ProcedureConfig) -> windows.WindowLengths:
    return windows.WindowLengths(
        ir_msc_hours=procedures.ir_msc_hours,
        ir_pe_hours=procedures.ir_pe_hours,
        inf_msc_days=procedures.inf_msc_days,
        inf_pe_hours=procedures.inf_pe_hours,
        assumed_msc_minutes=procedures.assumed_msc_minutes,
        assumed_pe_minutes=procedures.assumed_pe_minutes,
    )


def window_lengths(config: TrialConfig) -> windows.WindowLengths:
    """The §4.1 window lengths of this trial configuration."""
    return _lengths(config.procedures)


def end_of(procedure: Procedure, config: TrialConfig) -> datetime:
    """The procedure's end, or its start plus the nominal duration when none was sent."""
    return windows.procedure_end(procedure, window_lengths(config))


def in_reaction_window(procedure: Procedure, at: datetime, config: TrialConfig) -> bool:
    """`at` in W_IR_MSC or W_IR_PE of this procedure (closed interval)."""
    return windows.in_reaction_window(procedure, at, window_lengths(config))


def in_infection_window(procedure: Procedure, at: datetime, config: TrialConfig) -> bool:
    """`at` in W_INF_MSC = (start, +7 d] or W_INF_PE = (start, +72 h]."""
    return windows.in_infection_window(procedure, at, window_lengths(config))


def latest_reaction(
    state: ParticipantState, at: datetime, treatment: str, config: TrialConfig
) -> Procedure | None:
    """The latest `treatment` whose reaction window contains `at`."""
    return windows.latest(
        p
        for p in state.procedures
        if p.treatment == treatment and in_reaction_window(p, at, config)
    )


def latest_started_within(
    state: ParticipantState, at: datetime, treatment: str, span: timedelta
) -> Procedure | None:
    """The latest `treatment` started at most `span` before `at` (and not after it)."""
    return windows.latest(
        p
        for p in state.procedures
        if p.treatment == treatment and p.started_at <= at <= p.started_at + span
    )


def latest_infection(
    state: ParticipantState, at: datetime, config: TrialConfig
) -> Procedure | None:
    """The latest UC-MSC or PE whose infection window contains `at`."""
    return windows.infection_procedure(state.procedures, at, window_lengths(config))


def procedure_values(procedure: Procedure | None, at: datetime, *, window: str) -> dict[str, Value]:
    """Signal values that tag a finding with the procedure (and window) it followed."""
    if procedure is None:
        return {"procedure_proximate": False}
    return {
        "procedure_proximate": True,
        "window": window,
        "procedure": procedure.treatment,
        "procedure_event_id": str(procedure.event_id),
        "hours_after_procedure_start": windows.hours_since_start(procedure, at),
    }


def infection_tag(
    state: ParticipantState, at: datetime, config: TrialConfig
) -> tuple[dict[str, Value], Procedure | None]:
    """INF-07 tag: the UC-MSC or PE whose infection window contains `at`, and the arm."""
    procedure = latest_infection(state, at, config)
    if procedure is None:
        return {"procedure_proximate": False, "arm": state.arm}, None
    window = windows.INFECTION_WINDOW_NAMES[procedure.treatment]
    return tagged(state, procedure, at, window=window), procedure


def tagged(
    state: ParticipantState, procedure: Procedure, at: datetime, *, window: str
) -> dict[str, Value]:
    """The INF-07 tag of a finding at `at` in `window` of `procedure`: which, when, hours since."""
    return {
        **procedure_values(procedure, at, window=window),
        "procedure_started_at": procedure.started_at.isoformat(),
        "arm": state.arm,
    }


def infection_phrase(procedure: Procedure | None, at: datetime) -> str:
    """'; 5.5 h after the start of a plasma exchange (W_INF_PE)' for a signal's reason."""
    if procedure is None:
        return ""
    name = windows.PROCEDURE_NAMES.get(procedure.treatment, procedure.treatment)
    window = windows.INFECTION_WINDOW_NAMES.get(procedure.treatment, "")
    hours_since = windows.hours_since_start(procedure, at)
    return f"; {hours_since:g} h after the start of a {name} ({window})"


def baseline_before(
    state: ParticipantState, kind: str, procedure: Procedure, config: TrialConfig
) -> float | None:
    """Last `kind` value before the procedure started, within the baseline lookback [DC]."""
    since = procedure.started_at - hours(config.procedures.baseline_lookback_hours)
    values = [o for o in state.series(kind) if since <= o.at < procedure.started_at]
    return values[-1].value if values else None
