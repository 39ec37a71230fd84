"""An AE's case identity from SDTM (AESPID/AEGRPID), FHIR (identifier) and CSV (a column).

Follow-up records of one case (ICH E2D) must be recognisable as such: they share a case_id that
is scoped to the participant, so two subjects' `E01` are two cases. The pilot's numbers are
counted here from the AE file with pyreadstat and pandas, never with the importer under test.
"""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyreadstat
import pytest

from safetymon.importers._case import case_id
from safetymon.importers._types import Mapped, Unmapped
from safetymon.importers.csv_map import map_rows, mapping_from_toml
from safetymon.importers.fhir import FhirSettings, map_resource
from safetymon.importers.files import read_table, read_toml
from safetymon.importers.sdtm import map_ae, study_from_toml, supplemental
from services.ingest.core.accept import Accepted, accept

ROOT = Path(__file__).resolve().parents[3]
PILOT = ROOT.parent / "shared" / "data" / "cdiscpilot01" / "sdtm_original"
FHIR = ROOT.parent / "shared" / "data" / "fhir-r4"
MAPPINGS = ROOT / "safetymon" / "importers" / "mappings"
STUDY = study_from_toml({"arms": {"PBO": "A"}})
NOW = datetime(2026, 1, 1, tzinfo=UTC)
CRITERIA = ["AESDTH", "AESLIFE", "AESHOSP", "AESDISAB", "AESCONG"]


def _ae(**values: str) -> dict[str, str]:
    row = {
        "STUDYID": "PILOT",
        "USUBJID": "S-1",
        "AESEQ": "3",
        "AETERM": "PNEUMONIA",
        "AESEV": "MODERATE",
        "AESTDTC": "2014-03-02",
    }
    return row | values


def _payload(outcome: Mapped | Unmapped) -> dict[str, Any]:
    assert isinstance(outcome, Mapped), outcome
    payload: dict[str, Any] = outcome.submission["payload"]
    return payload


class TestCaseCode:
    def test_the_participant_and_the_source_column_are_part_of_the_id(self) -> None:
        assert case_id("01-701-1192", "AESPID", " E10 ") == "01-701-1192.AESPID.E10"
        assert case_id("01-701-1192", "AESPID", "E10") != case_id("01-701-1193", "AESPID", "E10")
        assert case_id("P-1", "AESPID", "7") != case_id("P-1", "AEGRPID", "7")

    def test_no_value_is_no_case(self) -> None:
        assert case_id("P-1", "CASE", "  ") is None

    @pytest.mark.parametrize("value", ["case 12/b", "E" * 70, "Müller-7"])
    def test_a_value_no_code_can_hold_becomes_a_stable_digest(self, value: str) -> None:
        first = case_id("P-1", "CASE", value)

        assert first is not None
        assert first.startswith("P-1.CASE.h")
        assert len(first) == len("P-1.CASE.h") + 16
        assert case_id("P-1", "CASE", value) == first  # a re-import gives the same id
        assert case_id("P-2", "CASE", value) != first

    def test_a_participant_code_near_the_limit_is_hashed_in_with_the_value(self) -> None:
        long_one, other = "P" * 60, "Q" * 60

        found = case_id(long_one, "AESPID", "E01")

        assert found is not None
        assert found.startswith("AECASE.")
        assert len(found) <= 64
        assert found != case_id(other, "AESPID", "E01")


class TestSdtm:
    def test_aespid_is_the_case_and_a_follow_up_record_shares_it(self) -> None:
        rows = [
            _ae(AESEQ="7", AESPID="E10", AESHOSP="Y", AEOUT="NOT RECOVERED/NOT RESOLVED"),
            _ae(AESEQ="10", AESPID="E10", AESHOSP="Y", AEOUT="RECOVERED/RESOLVED"),
        ]

        first, follow_up = (_payload(o) for o in map_ae(rows, {}, STUDY, sites={"S-1": "701"}))

        assert (first["ae_ref"], follow_up["ae_ref"]) == ("S-1.AE.7", "S-1.AE.10")
        assert first["case_id"] == follow_up["case_id"] == "S-1.AESPID.E10"

    def test_aegrpid_is_used_when_aespid_is_empty(self) -> None:
        (out,) = map_ae([_ae(AESPID="", AEGRPID="G2")], {}, STUDY, sites={"S-1": "701"})

        assert _payload(out)["case_id"] == "S-1.AEGRPID.G2"

    def test_no_case_column_leaves_case_id_off_the_wire(self) -> None:
        (out,) = map_ae([_ae()], {}, STUDY, sites={"S-1": "701"})
        assert isinstance(out, Mapped)

        accepted = accept(out.submission, recorded_at=NOW, actor="t")

        assert isinstance(accepted, Accepted)
        assert "case_id" not in accepted.wire["payload"]


class TestFhir:
    def test_the_adverse_event_identifier_is_the_case(self) -> None:
        resource = _fhir_example("adverseevent-example.json")

        (out,) = map_resource(resource, FhirSettings(default_site="S01"), origin="ae.json")

        assert _payload(out)["case_id"] == "example.AEID.49476534"

    def test_a_follow_up_resource_with_the_same_identifier_is_the_same_case(self) -> None:
        settings = FhirSettings(default_site="S01")
        initial = _fhir_example("adverseevent-example.json")
        follow_up = initial | {"id": "example-fu1", "outcome": {"coding": [{"code": "resolved"}]}}
        elsewhere = initial | {"id": "other", "subject": {"reference": "Patient/P-2"}}

        a, b, c = (
            _payload(next(map_resource(r, settings, origin="x")))
            for r in (initial, follow_up, elsewhere)
        )

        assert a["ae_ref"] != b["ae_ref"]
        assert a["case_id"] == b["case_id"]
        assert c["case_id"] == "P-2.AEID.49476534"

    def test_an_event_without_identifier_has_no_case(self) -> None:
        resource = _fhir_example("adverseevent-example.json")
        del resource["identifier"]

        (out,) = map_resource(resource, FhirSettings(default_site="S01"), origin="ae.json")

        assert "case_id" not in _payload(out)


class TestCsv:
    def test_the_shipped_ae_mapping_names_a_case_column(self) -> None:
        mapping = mapping_from_toml(read_toml(MAPPINGS / "site-ae.example.toml"))
        rows = [
            _sheet_row(number="AE-7", case="C-3", outcome="Not recovered"),
            _sheet_row(number="AE-8", case="C-3", outcome="Fatal"),
            _sheet_row(number="AE-9", case="", outcome="Recovered"),
        ]

        first, follow_up, alone = (_payload(o) for o in map_rows(rows, mapping, origin="ae.csv"))

        assert first["case_id"] == follow_up["case_id"] == "P-042.CASE.C-3"
        assert "case_id" not in alone
        assert tomllib.loads((MAPPINGS / "site-ae.example.toml").read_text())["columns"]["case_id"]


def _sheet_row(*, number: str, case: str, outcome: str) -> dict[str, str]:
    return {
        "PARTICIPANT": "P-042",
        "AE NUMBER": number,
        "CASE NUMBER": case,
        "ONSET": "02/03/2024 10:30",
        "TERM": "Spontaneous bacterial peritonitis",
        "CTCAE GRADE": "3",
        "SERIOUSNESS CRITERIA": "hospitalisation",
        "OUTCOME": outcome,
    }


def _fhir_example(name: str) -> dict[str, Any]:
    resource: dict[str, Any] = json.loads((FHIR / name).read_text())
    return resource


@pytest.mark.slow
def test_the_pilot_cases_records_and_follow_ups_match_the_ae_file() -> None:
    """Counted from the AE file: a follow-up is a record whose (USUBJID, AESPID) came earlier.

    "Earlier" is file order, the order the importer sends the records (and ingest and the
    rules see them); the file is not sorted by AESEQ, but in every case its first record
    also has the lowest AESEQ, so both readings give these counts.
    """
    frame, _ = pyreadstat.read_xport(str(PILOT / "ae.xpt"))
    serious = (frame[CRITERIA] == "Y").any(axis=1) | (frame["AESER"] == "Y")
    follow_up = frame.duplicated(subset=["USUBJID", "AESPID"], keep="first")
    by_seq = frame.sort_values(["USUBJID", "AESEQ"])
    assert (by_seq.duplicated(subset=["USUBJID", "AESPID"]).reindex(frame.index) == follow_up).all()
    serious_cases = frame[serious].groupby(["USUBJID", "AESPID"]).ngroups
    expected = {
        "records": len(frame),
        "serious_records": int(serious.sum()),
        "cases": frame.groupby(["USUBJID", "AESPID"]).ngroups,
        "serious_cases": serious_cases,
        "follow_ups": int(follow_up.sum()),
        "serious_follow_ups": int((follow_up & serious).sum()),
    }
    rows = read_table(PILOT / "ae.xpt")
    sites = {r["USUBJID"]: "701" for r in rows}
    supp = supplemental(read_table(PILOT / "suppae.xpt"))

    mapped = [o for o in map_ae(rows, supp, STUDY, sites=sites) if isinstance(o, Mapped)]

    payloads = [(m.submission["participant_id"], m.submission["payload"]) for m in mapped]
    seen: set[str] = set()
    follow_ups = serious_follow_ups = 0
    for _, payload in payloads:
        if payload["case_id"] in seen:
            follow_ups += 1
            serious_follow_ups += bool(payload["seriousness_criteria"])
        seen.add(payload["case_id"])
    found = {
        "records": len(payloads),
        "serious_records": sum(bool(p["seriousness_criteria"]) for _, p in payloads),
        "cases": len(seen),
        "serious_cases": len({p["case_id"] for _, p in payloads if p["seriousness_criteria"]}),
        "follow_ups": follow_ups,
        "serious_follow_ups": serious_follow_ups,
    }
    assert found == expected
    # The numbers the closing note of the issue reports (checked by hand against the file).
    assert expected == {
        "records": 1191,
        "serious_records": 36,
        "cases": 883,
        "serious_cases": 32,
        "follow_ups": 308,
        "serious_follow_ups": 4,
    }
    assert all(p["case_id"].startswith(f"{participant}.AESPID.") for participant, p in payloads)
    assert max(len(p["case_id"]) for _, p in payloads) <= 64
    verdicts = [accept(m.submission, recorded_at=NOW, actor="t") for m in mapped]
    assert all(isinstance(v, Accepted) for v in verdicts)
