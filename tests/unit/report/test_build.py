"""Pure table building: the SAE-02 clock, exposure against plan, and empty arms."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.report.core.build import build_report, sponsor_clock
from services.report.core.config import ReportConfig
from services.report.core.model import ArmExposure, Extract, LogPosition, SaeRow

AWARE = datetime(2024, 3, 1, 10, tzinfo=UTC)
SAE = SaeRow(
    participant_id="P-001", site_id="S01", arm="B", ae_ref="AE-1", term="Sepsis",
    onset_at=AWARE - timedelta(hours=3), worst_grade=4, criteria="hospitalisation",
    relatedness_uc_msc="possible", relatedness_pe="not_applicable", expectedness="expected",
    outcome="recovered", susar=False, last_procedure=None, last_procedure_at=None,
    awareness_at=AWARE, reported_at=None,
)  # fmt: skip


@pytest.mark.parametrize(
    ("reported", "as_of", "expected"),
    [
        (AWARE + timedelta(hours=24), AWARE + timedelta(days=9), "on time"),  # closed interval
        (AWARE + timedelta(hours=24, seconds=1), AWARE + timedelta(days=9), "late"),
        (None, AWARE + timedelta(hours=23), "pending"),
        (None, AWARE + timedelta(hours=25), "overdue"),
    ],
)
def test_sponsor_clock_is_awareness_plus_24_hours(
    reported: datetime | None, as_of: datetime, expected: str
) -> None:
    """SAE-02 (RULES.md §1, test vector a): awareness 10:00Z → due 10:00Z the next day."""
    due, status = sponsor_clock(replace(SAE, reported_at=reported), as_of, ReportConfig())

    assert due == "2024-03-02T10:00:00Z"
    assert status == expected


def test_no_awareness_time_is_said_not_guessed() -> None:
    assert sponsor_clock(replace(SAE, awareness_at=None), AWARE, ReportConfig()) == (
        None,
        "no awareness time",
    )


def test_an_empty_log_gives_every_arm_with_zeros_and_no_stop() -> None:
    extract = Extract(
        position=LogPosition(AWARE, 0, "0" * 64, 0), exposure=(), ae_counts=(), terms=(),
        aesi=(), aesi_onsets=(), infection_findings=(),
        saes=(), deaths=(), shifts=(), meld=(), stops=(), mortality=(),
    )  # fmt: skip

    report = build_report(extract, ReportConfig())

    assert [r[:2] for r in report.table("enrolment_exposure").rows] == [
        ("A", 0), ("B", 0), ("C", 0), ("D", 0)
    ]  # fmt: skip
    assert not any(s.triggered for s in report.stops)
    assert len(report.table("stopping_rules").rows) == 3 + 6 + 3 + 4


def test_planned_procedures_follow_the_configuration() -> None:
    """Planned = randomised × per-participant plan (RULES.md §0.1: 4 UC-MSC, 3 PE)."""
    extract = Extract(
        position=LogPosition(AWARE, 1, "0" * 64, 1),
        exposure=(ArmExposure("D", 30, 1, 2, 30 * 7 * 48.0, 100, 80),),
        ae_counts=(), terms=(), aesi=(), aesi_onsets=(), infection_findings=(),
        saes=(), deaths=(), shifts=(),
        meld=(), stops=(), mortality=(),
    )  # fmt: skip

    rows = build_report(extract, ReportConfig()).table("enrolment_exposure").rows

    assert rows[3] == ("D", 30, 1, 2, 1440.0, 100, 120, 80, 90)
