"""SDTM mapping rules on single records: partial dates, censored results, seriousness, arms."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from safetymon.importers._types import Mapped, MappingError, Unmapped, without_conflicts
from safetymon.importers.dates import complete
from safetymon.importers.sdtm import map_ae, map_dm, map_ex, map_lb, map_vs, study_from_toml

STUDY = study_from_toml(
    {
        "timezone": "Asia/Shanghai",
        "not_randomised": ["SCRNFAIL"],
        "arms": {"PBO": "A", "ACT": "B"},
        "treatments": {
            "DRUG": {"treatment": "uc_msc_infusion", "dose_cells_per_kg": 1e5},
            "PLACEBO": {"skip": "placebo"},
        },
    }
)
SITES = {"S-1": "701"}


def _ae(**values: str) -> dict[str, str]:
    row = {
        "STUDYID": "PILOT",
        "USUBJID": "S-1",
        "AESEQ": "3",
        "AETERM": "HEADACHE",
        "AESEV": "MODERATE",
        "AESER": "N",
        "AESTDTC": "2014-03",
        "AEREL": "POSSIBLE",
        "AEOUT": "RECOVERED/RESOLVED",
    }
    return row | values


class TestDates:
    def test_a_month_is_completed_to_its_first_day_in_the_study_zone_and_says_so(self) -> None:
        instant, reported = complete("2010-06", field="AESTDTC", zone=ZoneInfo("Asia/Shanghai"))

        assert instant.isoformat() == "2010-05-31T16:00:00+00:00"
        assert reported == {
            "as_reported": "2010-06",
            "precision": "month",
            "imputation": "start_of_period",
            "timezone_assumed": "Asia/Shanghai",
        }

    def test_an_offset_in_the_value_wins_over_the_study_zone(self) -> None:
        instant, reported = complete("2014-01-02T08:30:00+02:00", field="X", zone=ZoneInfo("UTC"))

        assert instant.isoformat() == "2014-01-02T06:30:00+00:00"
        assert reported["imputation"] == "none"
        assert "timezone_assumed" not in reported

    @pytest.mark.parametrize("value", ["", "2014-13-01", "01/02/2014", "2014-02-30"])
    def test_a_value_that_is_no_iso_date_is_an_error_naming_the_field(self, value: str) -> None:
        with pytest.raises(MappingError) as error:
            complete(value, field="LBDTC", zone=ZoneInfo("UTC"))

        assert error.value.field == "LBDTC"


class TestAdverseEvents:
    def test_seriousness_comes_from_the_criteria_even_when_aeser_says_no(self) -> None:
        (out,) = map_ae([_ae(AESHOSP="Y", AESLIFE="Y")], {}, STUDY, sites=SITES)

        assert isinstance(out, Mapped)
        assert out.submission["payload"]["seriousness_criteria"] == [
            "life_threatening",
            "hospitalisation",
        ]
        assert out.tag == "AE:serious"

    def test_aeser_without_a_criterion_counts_as_an_important_medical_event(self) -> None:
        (out,) = map_ae([_ae(AESER="Y")], {}, STUDY, sites=SITES)

        assert isinstance(out, Mapped)
        assert out.submission["payload"]["seriousness_criteria"] == ["important_medical_event"]

    def test_a_criterion_in_suppae_counts(self) -> None:
        supp = {("S-1", "3"): {"AESMIE": "Y"}}

        (out,) = map_ae([_ae()], supp, STUDY, sites=SITES)

        assert isinstance(out, Mapped)
        assert out.submission["payload"]["seriousness_criteria"] == ["important_medical_event"]

    def test_severity_becomes_a_grade_that_says_where_it_came_from(self) -> None:
        (out,) = map_ae([_ae()], {}, STUDY, sites=SITES)

        assert isinstance(out, Mapped)
        payload = out.submission["payload"]
        assert (payload["ctcae_grade"], payload["severity"], payload["ctcae_grade_source"]) == (
            2,
            "moderate",
            "from_severity",
        )
        assert payload["occurred_at_as_reported"]["precision"] == "month"
        assert out.submission["occurred_at"] == "2014-02-28T16:00:00Z"

    def test_an_unknown_causality_is_rejected_with_its_field(self) -> None:
        (out,) = map_ae([_ae(AEREL="MAYBE")], {}, STUDY, sites=SITES)

        assert out == Unmapped("AE:S-1:AESEQ=3", "AEREL", "'MAYBE' is not a causality we know")

    def test_a_subject_missing_from_dm_is_rejected(self) -> None:
        (out,) = map_ae([_ae(USUBJID="S-9")], {}, STUDY, sites=SITES)

        assert isinstance(out, Unmapped)
        assert (out.field, out.status) == ("USUBJID", "rejected")


class TestDemographics:
    def test_arms_come_from_the_mapping_and_screen_failures_are_not_enrolled(self) -> None:
        rows = [
            {
                "USUBJID": "S-1",
                "SITEID": "701",
                "ARMCD": "ACT",
                "RFSTDTC": "2014-01-02",
                "SEX": "F",
                "BRTHDTC": "1950-01-01",
            },
            {"USUBJID": "S-2", "SITEID": "701", "ARMCD": "SCRNFAIL", "RFSTDTC": ""},
            {"USUBJID": "S-3", "SITEID": "701", "ARMCD": "NEW", "RFSTDTC": "2014-01-02"},
        ]

        enrolled, screen_failure, unknown = map_dm(rows, STUDY)

        assert isinstance(enrolled, Mapped)
        assert enrolled.submission["payload"]["arm"] == "B"
        assert "1950" not in str(enrolled.submission)  # a date of birth never travels
        assert isinstance(screen_failure, Unmapped)
        assert screen_failure.status == "skipped"
        assert isinstance(unknown, Unmapped)
        assert (unknown.field, unknown.status) == ("ARMCD", "rejected")


class TestFindings:
    def test_a_censored_result_keeps_its_comparator_and_gi_per_l_becomes_ucum(self) -> None:
        rows = [
            {
                "USUBJID": "S-1",
                "LBSEQ": "1.0",
                "LBTESTCD": "BILI",
                "LBSTRESN": "",
                "LBSTRESC": "<3.42",
                "LBSTRESU": "umol/L",
                "LBDTC": "2013-11-13T11:55",
            },
            {
                "USUBJID": "S-1",
                "LBSEQ": "2",
                "LBTESTCD": "PLAT",
                "LBSTRESN": "250",
                "LBSTRESC": "250",
                "LBSTRESU": "GI/L",
                "LBDTC": "2013-11-13",
                "LBCAT": "HEMATOLOGY",
                "VISIT": "UNSCHEDULED 1.1",
            },
        ]

        bili, plat = map_lb(rows, STUDY, sites=SITES)

        assert isinstance(bili, Mapped)
        assert isinstance(plat, Mapped)
        assert bili.submission["payload"]["result"] == {
            "value": 3.42,
            "unit": "umol/L",
            "comparator": "<",
        }
        assert bili.submission["payload"]["loinc"] == "14631-6"
        assert plat.submission["payload"]["result"] == {"value": 250.0, "unit": "10*9/L"}
        assert plat.submission["payload"]["specimen"] == "blood"

    def test_a_qualitative_result_is_rejected_and_an_unmonitored_test_skipped(self) -> None:
        rows = [
            {
                "USUBJID": "S-1",
                "LBSEQ": "1",
                "LBTESTCD": "ALT",
                "LBSTRESN": "",
                "LBSTRESC": "HEMOLYSED",
                "LBSTRESU": "U/L",
                "LBDTC": "2013-11-13",
            },
            {"USUBJID": "S-1", "LBSEQ": "2", "LBTESTCD": "CHOL", "LBSTRESN": "5"},
        ]

        alt, chol = map_lb(rows, STUDY, sites=SITES)

        assert alt == Unmapped(
            "LB:S-1:ALT:LBSEQ=1", "LBSTRESN", "no numeric result (LBSTRESC is 'HEMOLYSED')"
        )
        assert isinstance(chol, Unmapped)
        assert chol.status == "skipped"

    def test_vital_signs_map_beats_per_minute(self) -> None:
        row = {
            "USUBJID": "S-1",
            "VSSEQ": "4",
            "VSTESTCD": "PULSE",
            "VSSTRESN": "72",
            "VSSTRESU": "BEATS/MIN",
            "VSDTC": "2014-01-02",
        }

        (out,) = map_vs([row], STUDY, sites=SITES)

        assert isinstance(out, Mapped)
        assert out.submission["payload"]["observations"] == {
            "heart_rate": {"value": 72.0, "unit": "/min"}
        }

    def test_exposure_follows_the_treatment_table(self) -> None:
        rows = [
            {
                "USUBJID": "S-1",
                "EXSEQ": "1",
                "EXTRT": "DRUG",
                "EXSTDTC": "2014-01-02",
                "EXENDTC": "2014-01-16",
            },
            {"USUBJID": "S-1", "EXSEQ": "2", "EXTRT": "PLACEBO", "EXSTDTC": "2014-01-02"},
            {"USUBJID": "S-1", "EXSEQ": "3", "EXTRT": "OTHER", "EXSTDTC": "2014-01-02"},
        ]

        drug, placebo, other = map_ex(rows, STUDY, sites=SITES)

        assert isinstance(drug, Mapped)
        assert drug.submission["payload"]["dose_cells_per_kg"] == 1e5
        assert drug.submission["payload"]["ended_at"] == "2014-01-15T16:00:00Z"
        assert isinstance(placebo, Unmapped)
        assert placebo.status == "skipped"
        assert isinstance(other, Unmapped)
        assert (other.field, other.status) == ("EXTRT", "rejected")


def test_a_repeated_key_with_other_content_is_rejected_and_an_identical_one_passes() -> None:
    rows = [_ae(), _ae(), _ae(AETERM="MIGRAINE")]

    outcomes = list(without_conflicts(map_ae(rows, {}, STUDY, sites=SITES)))

    assert [type(o).__name__ for o in outcomes] == ["Mapped", "Mapped", "Unmapped"]
    assert isinstance(outcomes[2], Unmapped)
    assert outcomes[2].field == "source_ref"
