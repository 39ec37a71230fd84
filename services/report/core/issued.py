"""The `ReportIssued` fact announcing a built report (core layer; pure).

Its event id is derived from what the report was built from (kind, as-of, log position, chain
head), so re-issuing the same report publishes the same id and JetStream drops the repeat.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final
from uuid import NAMESPACE_URL, UUID, uuid5

from schemas import ReportIssued
from schemas.derived import ReportIssuedPayload
from services.report.core.build import iso
from services.report.core.model import Report, number

REPORT_NAMESPACE: Final = uuid5(NAMESPACE_URL, "https://safetymon/report")
SOURCE: Final = "report"
ACTOR: Final = "safetymon-report"


def report_id(report: Report, kind: str) -> UUID:
    """Deterministic id of one report: same inputs, same id."""
    key = f"{kind}|{iso(report.position.as_of)}|{report.position.seq}|{report.position.chain_head}"
    return uuid5(REPORT_NAMESPACE, key)


def summary_numbers(report: Report) -> dict[str, float]:
    """Headline figures for the DSMB email: randomised per arm, stops and their probabilities."""
    numbers: dict[str, float] = {}
    for row in report.table("enrolment_exposure").rows:
        numbers[f"randomised.{row[0]}"] = number(row[1])
        numbers[f"deaths.{row[0]}"] = number(row[3])
    for row in report.table("stopping_rules").rows:
        rule, arm, window = row[0], row[1], row[2]
        key = f"{rule}.{arm}" + (f".{window}d" if rule == "STOP-02" else "")
        numbers[f"{key}.triggered"] = 1.0 if row[9] else 0.0
        numbers[f"{key}.events"] = number(row[3])
        if row[5] is not None:
            numbers[f"{key}.probability"] = number(row[5])
    numbers["stops_triggered"] = float(sum(s.triggered for s in report.stops))
    return numbers


def report_issued(
    report: Report, files: dict[str, str], *, kind: str, recorded_at: datetime
) -> ReportIssued:
    """Build the fact; `recorded_at` is when the report was issued (the only clock input)."""
    identifier = report_id(report, kind)
    return ReportIssued(
        event_id=identifier,
        trial_id=report.trial_id,
        occurred_at=report.position.as_of,
        recorded_at=recorded_at,
        source=SOURCE,
        source_ref=f"{kind}:{identifier}",
        actor=ACTOR,
        payload=ReportIssuedPayload(
            report_kind=kind,
            log_position=report.position.seq,
            chain_head=report.position.chain_head,
            files_sha256=dict(sorted(files.items())),
            numbers=summary_numbers(report),
        ),
    )
