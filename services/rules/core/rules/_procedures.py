"""Procedure windows of RULES.md §4.1 (core layer): which UC-MSC or PE a time belongs to.

`W_IR_MSC` = [start, end + 24 h]; `W_IR_PE` = [start, end + 6 h] (closed, §0.2);
`W_INF_MSC` = (start, start + 7 d]; `W_INF_PE` = (start, start + 72 h] (open at the start, as
RULES.md writes them). A procedure without `ended_at` is assumed to last its nominal time
[DC]. The extension of `W_INF_PE` to catheter removal + 48 h needs a catheter-removal fact
that the contracts do not have yet; it is not applied.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from schemas import Treatment
from services.rules.core.config import TrialConfig, days, hours
from services.rules.core.rules._alerting import Value
from services.rules.core.state import ParticipantState, Procedure

MSC = Treatment.UC_MSC_INFUSION.value
PE = Treatment.PLASMA_EXCHANGE.value
RBC = Treatment.RBC_TRANSFUSION.value
VASOPRESSOR = Treatment.VASOPRESSOR.value


def end_of(procedure: Procedure, config: TrialConfig) -> datetime:
    """The procedure's end, or its start plus the nominal duration when none was sent."""
    if procedure.ended_at is not None:
        return procedure.ended_at
    minutes = (
        config.procedures.assumed_msc_minutes
        if procedure.treatment == MSC
        else config.procedures.assumed_pe_minutes
        if procedure.treatment == PE
        else 0.0
    )
    return procedure.started_at + timedelta(minutes=minutes)


def in_reaction_window(procedure: Procedure, at: datetime, config: TrialConfig) -> bool:
    """`at` in W_IR_MSC or W_IR_PE of this procedure (closed interval)."""
    tail = (
        config.procedures.ir_msc_hours
        if procedure.treatment == MSC
        else config.procedures.ir_pe_hours
    )
    return procedure.started_at <= at <= end_of(procedure, config) + hours(tail)


def in_infection_window(procedure: Procedure, at: datetime, config: TrialConfig) -> bool:
    """`at` in W_INF_MSC = (start, +7 d] or W_INF_PE = (start, +72 h]."""
    span = (
        days(config.procedures.inf_msc_days)
        if procedure.treatment == MSC
        else hours(config.procedures.inf_pe_hours)
    )
    return procedure.started_at < at <= procedure.started_at + span


def latest_reaction(
    state: ParticipantState, at: datetime, treatment: str, config: TrialConfig
) -> Procedure | None:
    """The latest `treatment` whose reaction window contains `at`."""
    return _latest(
        p
        for p in state.procedures
        if p.treatment == treatment and in_reaction_window(p, at, config)
    )


def latest_infection(
    state: ParticipantState, at: datetime, config: TrialConfig
) -> Procedure | None:
    """The latest UC-MSC or PE whose infection window contains `at`."""
    return _latest(
        p
        for p in state.procedures
        if p.treatment in {MSC, PE} and in_infection_window(p, at, config)
    )


def _latest(candidates: Iterable[Procedure]) -> Procedure | None:
    return max(candidates, key=lambda p: (p.started_at, str(p.event_id)), default=None)


def procedure_values(procedure: Procedure | None, at: datetime, *, window: str) -> dict[str, Value]:
    """Signal values that tag a finding with the procedure (and window) it followed."""
    if procedure is None:
        return {"procedure_proximate": False}
    elapsed = (at - procedure.started_at).total_seconds() / 3600
    return {
        "procedure_proximate": True,
        "window": window,
        "procedure": procedure.treatment,
        "procedure_event_id": str(procedure.event_id),
        "hours_after_procedure_start": round(elapsed, 2),
    }


def infection_tag(
    state: ParticipantState, at: datetime, config: TrialConfig
) -> tuple[dict[str, Value], Procedure | None]:
    """INF-07 tag: the UC-MSC or PE whose infection window contains `at`, and the arm."""
    procedure = latest_infection(state, at, config)
    window = "W_INF_MSC" if procedure is not None and procedure.treatment == MSC else "W_INF_PE"
    return {**procedure_values(procedure, at, window=window), "arm": state.arm}, procedure


def baseline_before(
    state: ParticipantState, kind: str, procedure: Procedure, config: TrialConfig
) -> float | None:
    """Last `kind` value before the procedure started, within the baseline lookback [DC]."""
    since = procedure.started_at - hours(config.procedures.baseline_lookback_hours)
    values = [o for o in state.series(kind) if since <= o.at < procedure.started_at]
    return values[-1].value if values else None
