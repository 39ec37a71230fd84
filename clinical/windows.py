"""Procedure windows of RULES.md §4.1: which UC-MSC infusion or plasma exchange a time follows.

- `W_IR_MSC` = [MSC start, MSC end + 24 h] and `W_IR_PE` = [PE start, PE end + 6 h]: closed
  (RULES.md §0.2), the infusion-reaction and PE-complication windows;
- `W_INF_MSC` = (MSC start, + 7 d] and `W_INF_PE` = (PE start, + 72 h]: open at the start, as
  RULES.md writes them, the infection-after-procedure windows (INF-07, the DSMB's AESI by
  window). A finding at the very start of a procedure did not follow it.

A procedure sent without its end is assumed to last its nominal time [DC]. The extension of
`W_INF_PE` to catheter removal + 48 h needs a catheter-removal fact the contracts do not
have yet; it is not applied. When a time lies in the windows of several procedures, the one
that started last is named (ties: the smaller event id), the procedure nearest the finding.

The lengths come from the trial configuration (`[procedures]`); the rules pass theirs, the
DSMB report generates its SQL from `infection_window_rows` of the same lengths.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Protocol, TypeVar
from uuid import UUID

from schemas import Treatment

MSC: Final = Treatment.UC_MSC_INFUSION.value
PE: Final = Treatment.PLASMA_EXCHANGE.value
#: How a procedure is named in a signal and a report.
PROCEDURE_NAMES: Final = {MSC: "UC-MSC infusion", PE: "plasma exchange"}
INFECTION_WINDOW_NAMES: Final = {MSC: "W_INF_MSC", PE: "W_INF_PE"}
REACTION_WINDOW_NAMES: Final = {MSC: "W_IR_MSC", PE: "W_IR_PE"}


@dataclass(frozen=True, slots=True)
class WindowLengths:
    """The window lengths of the trial configuration (RULES.md §4.1 defaults)."""

    ir_msc_hours: float = 24.0
    ir_pe_hours: float = 6.0
    inf_msc_days: float = 7.0
    inf_pe_hours: float = 72.0
    assumed_msc_minutes: float = 30.0
    assumed_pe_minutes: float = 180.0


class ProcedureTime(Protocol):
    """When one procedure ran: what the windows need of it (the rules' `Procedure` is one)."""

    @property
    def treatment(self) -> str:
        """The `Treatment` value."""

    @property
    def started_at(self) -> datetime:
        """Its start."""

    @property
    def ended_at(self) -> datetime | None:
        """Its end, when sent."""

    @property
    def event_id(self) -> UUID:
        """The fact that recorded it."""


P = TypeVar("P", bound=ProcedureTime)


def procedure_end(procedure: ProcedureTime, lengths: WindowLengths) -> datetime:
    """The procedure's end, or its start plus the nominal duration when none was sent."""
    if procedure.ended_at is not None:
        return procedure.ended_at
    minutes = {MSC: lengths.assumed_msc_minutes, PE: lengths.assumed_pe_minutes}
    return procedure.started_at + timedelta(minutes=minutes.get(procedure.treatment, 0.0))


def infection_span(treatment: str, lengths: WindowLengths) -> timedelta | None:
    """How long after its start a procedure's infection window lasts (None: no window)."""
    if treatment == MSC:
        return timedelta(days=lengths.inf_msc_days)
    if treatment == PE:
        return timedelta(hours=lengths.inf_pe_hours)
    return None


def in_infection_window(procedure: ProcedureTime, at: datetime, lengths: WindowLengths) -> bool:
    """`at` in W_INF_MSC = (start, + 7 d] or W_INF_PE = (start, + 72 h] of `procedure`."""
    span = infection_span(procedure.treatment, lengths)
    return span is not None and procedure.started_at < at <= procedure.started_at + span


def in_reaction_window(procedure: ProcedureTime, at: datetime, lengths: WindowLengths) -> bool:
    """`at` in W_IR_MSC = [start, end + 24 h] or W_IR_PE = [start, end + 6 h] (closed)."""
    tail = lengths.ir_msc_hours if procedure.treatment == MSC else lengths.ir_pe_hours
    end = procedure_end(procedure, lengths) + timedelta(hours=tail)
    return procedure.started_at <= at <= end


def latest(candidates: Iterable[P]) -> P | None:
    """The procedure that started last (ties: the smaller event id)."""
    return max(candidates, key=lambda p: (p.started_at, str(p.event_id)), default=None)


def infection_procedure(procedures: Iterable[P], at: datetime, lengths: WindowLengths) -> P | None:
    """The UC-MSC infusion or PE whose infection window holds `at` and that started last."""
    return latest(p for p in procedures if in_infection_window(p, at, lengths))


def hours_since_start(procedure: ProcedureTime, at: datetime) -> float:
    """Hours from the procedure's start to `at`, to two decimals."""
    return round((at - procedure.started_at).total_seconds() / 3600, 2)


def infection_window_rows(lengths: WindowLengths) -> tuple[tuple[str, str, str, float], ...]:
    """(treatment, procedure name, window name, hours after start) of each infection window.

    Each window is (start, start + hours]: open at the start, closed at the end.
    """
    return tuple(
        (
            treatment,
            PROCEDURE_NAMES[treatment],
            INFECTION_WINDOW_NAMES[treatment],
            span.total_seconds() / 3600,
        )
        for treatment in (MSC, PE)
        if (span := infection_span(treatment, lengths)) is not None
    )


__all__ = [
    "INFECTION_WINDOW_NAMES",
    "MSC",
    "PE",
    "PROCEDURE_NAMES",
    "REACTION_WINDOW_NAMES",
    "ProcedureTime",
    "WindowLengths",
    "hours_since_start",
    "in_infection_window",
    "in_reaction_window",
    "infection_procedure",
    "infection_span",
    "infection_window_rows",
    "latest",
    "procedure_end",
]
