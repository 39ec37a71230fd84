"""Use-cases of the report service (app layer): build, write and announce a DSMB report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from schemas import ReportIssued
from services.report.core.build import build_report
from services.report.core.config import ReportConfig
from services.report.core.issued import report_id, report_issued
from services.report.core.model import Report
from services.report.core.schedule import ScheduleState, plan
from services.report.ports import ReportPublisher, ReportWriter, SafetyData


@dataclass(frozen=True, slots=True)
class Issued:
    """A report written to disk, with its files' digests and the fact that announces it."""

    report: Report
    directory: Path
    files: dict[str, str]
    fact: ReportIssued


def build_dsmb_report(source: SafetyData, as_of: datetime, config: ReportConfig) -> Report:
    """Build the report from the log as of `as_of` (recorded time)."""
    return build_report(source.extract(as_of, config), config)


def issue_dsmb_report(  # noqa: PLR0913 - the use-case's inputs, keyword-only
    *,
    source: SafetyData,
    writer: ReportWriter,
    config: ReportConfig,
    as_of: datetime,
    out: Path,
    now: datetime,
    kind: str = "dsmb_periodic",
) -> Issued:
    """Build the report, write its files to `out`, and prepare its `ReportIssued` fact."""
    report = build_dsmb_report(source, as_of, config)
    return write_report(report, writer=writer, out=out, now=now, kind=kind)


def write_report(
    report: Report, *, writer: ReportWriter, out: Path, now: datetime, kind: str
) -> Issued:
    """Write a built report to `out` and prepare its `ReportIssued` fact."""
    files = writer.write(report, out, generated_at=now)
    return Issued(report, out, files, report_issued(report, files, kind=kind, recorded_at=now))


async def announce(issued: Issued, publisher: ReportPublisher) -> None:
    """Publish the report's `ReportIssued` fact for notify to route to the DSMB."""
    await publisher.publish(issued.fact)


async def schedule_tick(  # noqa: PLR0913 - the tick's inputs, keyword-only
    *,
    source: SafetyData,
    writer: ReportWriter,
    publisher: ReportPublisher | None,
    config: ReportConfig,
    state: ScheduleState,
    now: datetime,
    root: Path,
) -> tuple[list[Issued], ScheduleState]:
    """Issue the reports due at `now` into `root/<report id>/` and announce them.

    The stops are evaluated on the log as of `now`; an ad hoc report is that very report.
    Returns what was issued and the state to keep once it has all been announced.
    """
    current = build_dsmb_report(source, now, config)
    triggered = frozenset(f"{s.rule}/{s.arm}" for s in current.stops if s.triggered)
    due, next_state = plan(now, state, triggered, config.schedule)
    issued: list[Issued] = []
    for item in due:
        report = current if item.as_of == now else build_dsmb_report(source, item.as_of, config)
        out = root / str(report_id(report, item.kind))
        done = write_report(report, writer=writer, out=out, now=now, kind=item.kind)
        if publisher is not None:
            await announce(done, publisher)
        issued.append(done)
    return issued, next_state
