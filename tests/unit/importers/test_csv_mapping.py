"""Site CSV column mappings: long and wide lab sheets, AE sheets, mapping-file mistakes."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from safetymon.importers._types import Mapped, Unmapped
from safetymon.importers.csv_map import map_rows, mapping_from_toml
from safetymon.importers.sdtm import StudyMappingError

MAPPINGS = Path(__file__).resolve().parents[3] / "safetymon" / "importers" / "mappings"


def _shipped(name: str) -> dict[str, object]:
    return tomllib.loads((MAPPINGS / name).read_text())


def _row(**cells: str) -> dict[str, str]:
    return {key.upper(): value for key, value in cells.items()}


def test_a_long_lab_sheet_reads_local_times_censored_values_and_names_unknown_tests() -> None:
    mapping = mapping_from_toml(_shipped("site-lab.example.toml"))
    rows = [
        _row(
            Participant="P-042",
            Sample="L-1",
            Collected="01/03/2024 08:00",
            Test="Total bilirubin",
            Result="<0.2",
            Unit="mg/dl",
            Low="0.1",
            High="1.2",
        ),
        _row(
            Participant="P-042",
            Sample="L-2",
            Collected="01/03/2024 08:00",
            Test="Glucose",
            Result="5",
            Unit="mmol/L",
        ),
    ]

    bili, glucose = map_rows(rows, mapping, origin="lab.csv")

    assert isinstance(bili, Mapped)
    assert bili.submission["occurred_at"] == "2024-03-01T00:00:00Z"  # 08:00 in Shanghai
    assert bili.submission["source_ref"] == "LAB:L-1:Total bilirubin"
    payload = bili.submission["payload"]
    assert payload["result"] == {"value": 0.2, "unit": "mg/dl", "comparator": "<"}
    assert (payload["loinc"], payload["reference_high"]) == ("1975-2", 1.2)
    assert glucose == Unmapped("lab.csv:row 2", "TEST", "test 'Glucose' has no LOINC in [tests]")


def test_a_wide_sheet_makes_one_result_per_filled_column_on_base_date_plus_days() -> None:
    mapping = mapping_from_toml(_shipped("mayo-pbcseq.toml"))
    row = _row(id="7", day="31", bili="1.4", albumin="3.5", platelet="", protime="10.9")
    row["ALK.PHOS"] = "1200"

    outcomes = list(map_rows([row], mapping, origin="pbc.csv"))

    assert [o.tag for o in outcomes if isinstance(o, Mapped)] == [
        "csv:lab:1975-2",
        "csv:lab:1751-7",
        "csv:lab:5902-2",
        "csv:lab:6768-6",
    ]
    first = outcomes[0]
    assert isinstance(first, Mapped)
    assert first.submission["participant_id"] == "PBC-7"
    assert first.submission["occurred_at"] == "2000-02-01T00:00:00Z"


def test_an_ae_sheet_maps_criteria_and_causality_words() -> None:
    mapping = mapping_from_toml(_shipped("site-ae.example.toml"))
    row = {
        "PARTICIPANT": "P-042",
        "AE NUMBER": "AE-7",
        "ONSET": "02/03/2024 10:30",
        "TERM": "Oesophageal varices haemorrhage",
        "CTCAE GRADE": "3",
        "SERIOUSNESS CRITERIA": "hospitalisation; life_threatening",
        "RELATED TO UC-MSC": "Possible",
        "OUTCOME": "Not recovered",
    }

    (out,) = map_rows([row], mapping, origin="ae.csv")

    assert isinstance(out, Mapped)
    payload = out.submission["payload"]
    assert payload["seriousness_criteria"] == ["hospitalisation", "life_threatening"]
    assert (payload["relatedness_uc_msc"], payload["outcome"]) == ("possible", "not_recovered")
    assert (payload["ae_ref"], payload["ctcae_grade"]) == ("AE-7", 3)
    assert out.tag == "csv:adverse_event:serious"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "vitals", "source": "x"}, "kind"),
        ({"kind": "lab", "columns": {}}, "source"),
        (
            {"kind": "lab", "source": "x", "site": "S01", "columns": {"participant": "p"}},
            "occurred_at",
        ),
        (
            {
                "kind": "lab",
                "source": "x",
                "columns": {
                    "participant": "p",
                    "occurred_at": "t",
                    "test": "t",
                    "value": "v",
                    "unit": "u",
                },
            },
            "site",
        ),
    ],
)
def test_a_mapping_mistake_names_its_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(StudyMappingError, match=message):
        mapping_from_toml(data)
