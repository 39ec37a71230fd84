"""What the report is made of (core layer): the extract the queries return, and the tables.

The extract holds set-based aggregates from the query adapter, one dataclass per query; the
core turns them into `Table`s (fixed columns and order, rates, percentages, clocks) and the
stopping-rule status. Timestamps are aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Cell = str | int | float | bool | None
Kind = Literal["str", "int", "float", "bool"]


def number(cell: Cell) -> float:
    """A numeric cell as a float (0.0 for an empty one); a text cell is a programming error."""
    if cell is None:
        return 0.0
    if isinstance(cell, str):
        raise TypeError(f"expected a number, not {cell!r}")
    return float(cell)


@dataclass(frozen=True, slots=True)
class LogPosition:
    """The log prefix a report is built from: every event with seq ≤ `seq`."""

    as_of: datetime
    seq: int
    chain_head: str
    events: int


@dataclass(frozen=True, slots=True)
class ArmExposure:
    """Enrolment, follow-up and procedures of one arm."""

    arm: str
    randomised: int
    withdrawn: int
    deaths: int
    patient_days: float
    uc_msc_given: int
    pe_given: int


@dataclass(frozen=True, slots=True)
class AeCount:
    """Participants with, and number of, AEs of one kind in one arm."""

    arm: str
    kind: str  # any, grade3, serious, related, fatal
    participants: int
    events: int


@dataclass(frozen=True, slots=True)
class TermCount:
    """AEs of one reported term in one arm, with the worst CTCAE grade."""

    body_system: str
    term: str
    arm: str
    participants: int
    events: int
    worst_grade: int


@dataclass(frozen=True, slots=True)
class AesiCount:
    """AEs of special interest of one category, arm and procedure window."""

    category: str
    window: str
    arm: str
    participants: int
    events: int


@dataclass(frozen=True, slots=True)
class InfectionFindingCount:
    """Infection findings (fever, SBP, bacteraemia) of one kind, window and arm."""

    finding: str
    label: str
    window: str
    arm: str
    participants: int
    findings: int


@dataclass(frozen=True, slots=True)
class AesiOnset:
    """Participants whose first AE of a category began on `day` after randomisation."""

    category: str
    arm: str
    day: int
    participants: int


@dataclass(frozen=True, slots=True)
class SaeRow:
    """One serious AE, its latest assessment and the procedures and reports around it."""

    participant_id: str
    site_id: str
    arm: str
    ae_ref: str
    term: str
    onset_at: datetime
    worst_grade: int
    criteria: str
    relatedness_uc_msc: str
    relatedness_pe: str
    expectedness: str
    outcome: str
    susar: bool
    last_procedure: str | None
    last_procedure_at: datetime | None
    awareness_at: datetime | None
    reported_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeathRow:
    """One death and the last protocol procedure before it."""

    participant_id: str
    site_id: str
    arm: str
    died_at: datetime
    cause: str
    related_ae_ref: str | None
    last_procedure: str | None
    last_procedure_at: datetime | None


@dataclass(frozen=True, slots=True)
class ShiftCount:
    """Participants by baseline and worst post-baseline CTCAE grade of one lab term."""

    term: str
    arm: str
    baseline_grade: int | None
    worst_grade: int
    participants: int


@dataclass(frozen=True, slots=True)
class MeldPoint:
    """MELD (OPTN integer) by arm and study week: participants and quartiles."""

    arm: str
    week: int
    participants: int
    q1: float
    median: float
    q3: float


@dataclass(frozen=True, slots=True)
class StopCounts:
    """What the stopping rules need from the log, for one arm."""

    arm: str
    prst_events: int  # STOP-01: participants with a procedure-related serious toxicity
    prst_evaluable: int  # STOP-01 n: completed the window after the last procedure, or event
    sentinel_events: int  # STOP-03: deaths / grade ≥ 4 ≤ 7 d after a procedure, related
    susars: int  # STOP-04
    susar_top_term: str | None
    susar_top_count: int


@dataclass(frozen=True, slots=True)
class MortalityCount:
    """Deaths within a window after randomisation among evaluable participants (STOP-02)."""

    arm: str
    window_days: int
    deaths: int
    evaluable: int


@dataclass(frozen=True, slots=True)
class Extract:
    """Everything the report reads from the log, as of one position."""

    position: LogPosition
    exposure: tuple[ArmExposure, ...]
    ae_counts: tuple[AeCount, ...]
    terms: tuple[TermCount, ...]
    aesi: tuple[AesiCount, ...]
    aesi_onsets: tuple[AesiOnset, ...]
    infection_findings: tuple[InfectionFindingCount, ...]
    saes: tuple[SaeRow, ...]
    deaths: tuple[DeathRow, ...]
    shifts: tuple[ShiftCount, ...]
    meld: tuple[MeldPoint, ...]
    stops: tuple[StopCounts, ...]
    mortality: tuple[MortalityCount, ...]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a table: its name in CSV/Parquet, its type and its printed label."""

    name: str
    kind: Kind
    label: str


@dataclass(frozen=True, slots=True)
class Table:
    """A report table: the same rows go to HTML, CSV and Parquet."""

    name: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a chart: an arm's points (x, y) in increasing x."""

    label: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart's data; the HTML adapter draws it as inline SVG."""

    name: str
    title: str
    x_label: str
    y_label: str
    series: tuple[Series, ...]
    step: bool = False


@dataclass(frozen=True, slots=True)
class StopStatus:
    """One stopping rule for one arm (a row of the stopping-rule table)."""

    rule: str
    arm: str
    triggered: bool
    summary: str


@dataclass(frozen=True, slots=True)
class Report:
    """The DSMB report as data: position, configuration version, tables, charts, stops."""

    trial_id: str
    config_version: str
    position: LogPosition
    tables: tuple[Table, ...]
    charts: tuple[Chart, ...]
    stops: tuple[StopStatus, ...]

    def table(self, name: str) -> Table:
        """The table called `name`."""
        return next(t for t in self.tables if t.name == name)
