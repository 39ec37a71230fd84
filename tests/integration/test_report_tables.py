"""The DSMB report's tables agree with a hand-built feed whose expected counts are written out.

The feed (tests/unit/report/fixture_feed.py) goes through ingest's own validation, chaining
and Parquet snapshot; the report is read back with DuckDB. Every expected value below was
worked out by hand from the feed's comments, not produced by the code under test.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from services.report.adapters.duckdb_source import DuckDBLogSource
from services.report.core.build import build_report
from services.report.core.config import ReportConfig
from services.report.core.model import Report
from tests.unit.report.fixture_feed import AS_OF, build_fixture_log
from tests.unit.report.stats_reference import beta_tail

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def event_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fixture_log(tmp_path_factory.mktemp("report-fixture"))


@pytest.fixture(scope="module")
def report(event_log: Path) -> Report:
    config = ReportConfig()
    return build_report(DuckDBLogSource(event_log).extract(AS_OF, config), config)


def _rows(report: Report, name: str) -> list[tuple[object, ...]]:
    return list(report.table(name).rows)


def test_report_states_the_log_position_and_chain_head_as_of_the_cut(
    report: Report, event_log: Path
) -> None:
    log = pq.read_table(event_log, columns=["seq", "recorded_at", "hash"]).to_pylist()
    before = [row for row in log if row["recorded_at"] <= AS_OF]

    assert len(log) == 49  # 48 recorded by the as-of time, the late pruritus after it
    assert report.position.seq == len(before) == 48
    assert report.position.chain_head == before[-1]["hash"]


def test_enrolment_and_exposure_by_arm(report: Report) -> None:
    # Patient-days: A 45 + 19 (death), B 45 + 7 (withdrawal), C 45 + 44, D 45 + 44.
    assert _rows(report, "enrolment_exposure") == [
        ("A", 2, 0, 1, round(64 / 7, 2), 0, 0, 0, 0),
        ("B", 2, 1, 0, round(52 / 7, 2), 5, 8, 0, 0),
        ("C", 2, 0, 0, round(89 / 7, 2), 0, 0, 6, 6),
        ("D", 2, 0, 0, round(89 / 7, 2), 1, 8, 1, 6),
    ]


def test_ae_summary_counts_and_rates(report: Report) -> None:
    expected = {
        # arm: {kind: (participants, events)}; the corrected diarrhoea is grade 1, the
        # pruritus recorded after the as-of time is absent, the HE update made it serious.
        "A": {"any": (2, 2), "grade3": (1, 1), "serious": (1, 1), "related": (0, 0),
              "fatal": (1, 1), "death": (1, 1)},
        "B": {"any": (2, 3), "grade3": (1, 1), "serious": (1, 1), "related": (1, 2),
              "fatal": (0, 0), "death": (0, 0)},
        "C": {"any": (2, 2), "grade3": (1, 1), "serious": (1, 1), "related": (1, 1),
              "fatal": (0, 0), "death": (0, 0)},
        "D": {"any": (2, 2), "grade3": (1, 1), "serious": (1, 1), "related": (0, 0),
              "fatal": (0, 0), "death": (0, 0)},
    }  # fmt: skip
    weeks = {"A": 64 / 7, "B": 52 / 7, "C": 89 / 7, "D": 89 / 7}
    rows = _rows(report, "ae_summary")

    found = {(r[0], r[1]): (r[4], r[6]) for r in rows}
    assert found == {(arm, kind): v for arm, kinds in expected.items() for kind, v in kinds.items()}
    for arm, kind, _label, randomised, participants, percent, events, rate in rows:
        assert randomised == 2
        assert percent == pytest.approx(participants / 2 * 100)
        assert rate == pytest.approx(events / weeks[arm] * 100, abs=0.005 + 1e-9), (arm, kind)


def test_aes_by_body_system_and_term_with_worst_grade(report: Report) -> None:
    assert _rows(report, "ae_by_term") == [
        ("Gastrointestinal disorders", "Diarrhea", "A", 1, 1, 1),
        ("Gastrointestinal disorders", "Oesophageal varices haemorrhage", "C", 1, 1, 3),
        ("General disorders and administration site conditions", "Fever", "B", 1, 1, 1),
        ("Hepatobiliary disorders", "Hepatic failure", "A", 1, 1, 5),
        ("Infections and infestations", "Sepsis", "B", 1, 1, 4),
        ("Infections and infestations", "Urinary tract infection", "B", 1, 1, 2),
        ("Nervous system disorders", "Hepatic encephalopathy", "D", 1, 1, 3),
        ("Nervous system disorders", "Paraesthesia", "C", 1, 1, 1),
        ("Renal and urinary disorders", "Acute kidney injury", "D", 1, 1, 2),
    ]


def test_events_of_special_interest_by_procedure_window(report: Report) -> None:
    assert [(r[0], r[2], r[3], r[4], r[5]) for r in _rows(report, "aesi_by_window")] == [
        ("he", "after UC-MSC and PE", "D", 1, 1),  # 10 h after UC-MSC, 15 h after PE
        ("bleeding", "outside procedure windows", "C", 1, 1),  # 10.5 days after the last PE
        ("infection", "after UC-MSC", "B", 2, 2),  # sepsis 16 h, UTI 40 h after infusions
        ("infusion_reaction", "after UC-MSC", "B", 1, 1),  # fever 1.5 h after the start
        ("pe_complication", "after PE", "C", 1, 1),  # paraesthesia during the PE
        ("aki", "outside procedure windows", "D", 1, 1),  # no procedure yet
    ]


def test_cumulative_incidence_steps(report: Report) -> None:
    assert _rows(report, "aesi_cumulative") == [
        ("he", "D", 2, 1, 2, 50.0),
        ("bleeding", "C", 18, 1, 2, 50.0),
        ("infection", "B", 3, 1, 2, 50.0),
        ("infection", "B", 9, 2, 2, 100.0),
        ("infusion_reaction", "B", 1, 1, 2, 50.0),
        ("pe_complication", "C", 1, 1, 2, 50.0),
        ("aki", "D", 8, 1, 2, 50.0),
    ]


def test_sae_listing_with_causality_and_clock_compliance(report: Report) -> None:
    assert _rows(report, "sae_listing") == [
        ("P-A2", "S02", "A", "A2-AE1", "Hepatic failure", "2024-03-19T00:00:00Z", 5, "death",
         "not_applicable", "not_applicable", "expected", "fatal", False, None, None,
         "2024-03-19T06:00:00Z", "2024-03-19T20:00:00Z", "2024-03-20T06:00:00Z", "on time"),
        ("P-B1", "S01", "B", "B1-AE2", "Sepsis", "2024-03-10T00:00:00Z", 4,
         "life_threatening; hospitalisation", "possible", "not_applicable", "unexpected",
         "recovered", True, "UC-MSC", 0.7, "2024-03-10T02:00:00Z", "2024-03-11T05:00:00Z",
         "2024-03-11T02:00:00Z", "late"),
        ("P-C2", "S03", "C", "C2-AE1", "Oesophageal varices haemorrhage", "2024-03-20T00:00:00Z",
         3, "hospitalisation", "not_applicable", "not_related", "expected", "not_recovered",
         False, "PE", 10.5, "2024-03-20T04:00:00Z", None, "2024-03-21T04:00:00Z", "overdue"),
        ("P-D1", "S01", "D", "D1-AE1", "Hepatic encephalopathy", "2024-03-03T00:00:00Z", 3,
         "hospitalisation", "not_related", "not_related", "expected", "recovering", False,
         "UC-MSC", 0.4, "2024-03-03T01:00:00Z", "2024-03-03T20:00:00Z", "2024-03-04T01:00:00Z",
         "on time"),
    ]  # fmt: skip


def test_death_listing(report: Report) -> None:
    assert _rows(report, "death_listing") == [
        ("P-A2", "S02", "A", "2024-03-21T00:00:00Z", "liver_failure", "A2-AE1", None, None, False)
    ]


def test_lab_shift_baseline_vs_worst_post_baseline_grade(report: Report) -> None:
    assert _rows(report, "lab_shift") == [
        ("Alanine aminotransferase increased", "B", 0, 2, 1),  # 35 -> 130, ULN 40 (L01)
        ("Hypocalcemia (ionised)", "C", None, 3, 1),  # 0.85 mmol/L, no baseline
        ("INR increased", "A", None, 2, 1),  # 2.0 and 1.6
        ("Platelet count decreased", "C", 0, 3, 1),  # 130 -> 48, LLN 125 (L16)
    ]


def test_meld_by_week(report: Report) -> None:
    # RULES.md §5.2 M3 (bilirubin 171, INR 2.0, creatinine 132.6) and M2 (85.5, 1.6, 88.4).
    assert _rows(report, "meld_by_week") == [
        ("A", 0, 1, 27.0, 27.0, 27.0),
        ("A", 1, 1, 18.0, 18.0, 18.0),
    ]


def test_stopping_rule_status(report: Report) -> None:
    rows = {(r[0], r[1], r[2]): r for r in _rows(report, "stopping_rules")}
    # STOP-01: B has the related sepsis (n = the event + P-B2 past day 28 after her only
    # infusion); C the iCa 0.85 during PE (n = both past day 28); D nobody past it but P-D1.
    for arm, x, n in (("B", 1, 2), ("C", 1, 2), ("D", 0, 1)):
        row = rows[("STOP-01", arm, 28)]
        assert (row[3], row[4]) == (x, n)
        assert row[5] == pytest.approx(beta_tail(0.15, 0.3 + x, 1.7 + n - x), abs=5e-5)
        assert row[9] is False
    assert rows[("STOP-01", "B", 28)][7] == "stop at ≥ 2 of 2"
    assert rows[("STOP-01", "D", 28)][7] == "not reachable at n = 1"
    # STOP-02, worked by hand: Beta(1,2) vs Beta(2,2) = 3/10; Beta(1,3) vs Beta(2,2) = 1/5;
    # Beta(1,1) vs Beta(2,1) = 1/3 (no participant of the arm past day 84).
    for arm, window, deaths, n, probability, difference in (
        ("B", 28, 0, 1, 0.3, -0.5), ("C", 28, 0, 2, 0.2, -0.5), ("D", 28, 0, 2, 0.2, -0.5),
        ("B", 84, 0, 0, 1 / 3, None), ("C", 84, 0, 0, 1 / 3, None),
    ):  # fmt: skip
        row = rows[("STOP-02", arm, window)]
        assert (row[3], row[4]) == (deaths, n)
        assert row[5] == pytest.approx(probability, abs=5e-5)
        assert row[8] == difference
        assert row[9] is False
    # STOP-03: the grade-4 related sepsis 16 h after an infusion pauses arm B.
    assert [(r[1], r[3], r[9]) for r in rows.values() if r[0] == "STOP-03"] == [
        ("B", 1, True), ("C", 0, False), ("D", 0, False)
    ]  # fmt: skip
    assert [(r[1], r[3], r[9]) for r in rows.values() if r[0] == "STOP-04"] == [
        ("A", 0, False), ("B", 1, False), ("C", 0, False), ("D", 0, False)
    ]  # fmt: skip
    assert [(s.rule, s.arm) for s in report.stops if s.triggered] == [("STOP-03", "B")]


def test_a_later_cut_counts_the_late_event(event_log: Path) -> None:
    config = ReportConfig()
    later = AS_OF.replace(day=17)

    report = build_report(DuckDBLogSource(event_log).extract(later, config), config)

    assert report.position.seq == 49
    assert ("Skin and subcutaneous tissue disorders", "Pruritus", "A", 1, 1, 1) in _rows(
        report, "ae_by_term"
    )
    assert report.table("ae_summary").rows[0][:7] == ("A", "any", "Any AE", 2, 2, 100.0, 3)
