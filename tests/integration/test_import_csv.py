"""Site spreadsheets through `safetymon ingest --format csv --mapping`: real public data.

The Mayo PBC trial's visit labs (a wide sheet) with the shipped mapping, and the CDISC pilot's
AEs of one site reshaped into the example AE sheet layout. Expected counts come from pandas.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyreadstat
import pytest
import structlog.testing
from typer.testing import CliRunner

from safetymon.cli import app
from safetymon.runner import Stack

pytestmark = pytest.mark.integration

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
MAPPINGS = Path(__file__).resolve().parents[2] / "safetymon" / "importers" / "mappings"
RESULTS = {
    "bili": "1975-2",
    "albumin": "1751-7",
    "platelet": "777-3",
    "protime": "5902-2",
    "alk.phos": "6768-6",
}
CRITERIA = {
    "AESDTH": "death",
    "AESLIFE": "life_threatening",
    "AESHOSP": "hospitalisation",
    "AESDISAB": "disability",
    "AESCONG": "congenital_anomaly",
}


async def _import(stack: Stack, sheet: Path, mapping: Path, reasons: Path) -> dict[str, Any]:
    args = [
        "ingest",
        "--format",
        "csv",
        "--mapping",
        str(mapping),
        "--reasons",
        str(reasons),
        "--url",
        f"http://127.0.0.1:{stack.http_port}",
        str(sheet),
    ]
    with structlog.testing.capture_logs():
        result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


async def test_a_wide_lab_sheet_imports_each_result_once(stack: Stack, tmp_path: Path) -> None:
    pbc = pd.read_csv(SHARED / "liver" / "pbcseq_rdatasets.csv")
    pbc = pbc[pbc["id"] <= 25]
    sheet = tmp_path / "pbcseq.csv"
    pbc.to_csv(sheet, index=False)
    expected = {f"csv:lab:{loinc}": int(pbc[col].notna().sum()) for col, loinc in RESULTS.items()}

    first = await _import(stack, sheet, MAPPINGS / "mayo-pbcseq.toml", tmp_path / "r1.jsonl")
    second = await _import(stack, sheet, MAPPINGS / "mayo-pbcseq.toml", tmp_path / "r2.jsonl")

    assert {tag: c["accepted"] for tag, c in first["by_tag"].items()} == expected
    # Each filled result cell of a wide sheet is one record.
    assert (first["read"], first["rejected"]) == (sum(expected.values()), 0)
    assert (second["accepted"], second["duplicate"]) == (0, sum(expected.values()))


async def test_an_ae_sheet_keeps_grades_criteria_and_local_times(
    stack: Stack, tmp_path: Path
) -> None:
    ae, _ = pyreadstat.read_xport(str(SHARED / "cdiscpilot01" / "sdtm_original" / "ae.xpt"))
    ae = ae[(ae["USUBJID"].str.contains("-710-")) & (ae["AESTDTC"].str.len() == 10)]
    criteria = ae[list(CRITERIA)].apply(
        lambda row: "; ".join(CRITERIA[c] for c in CRITERIA if row[c] == "Y"), axis=1
    )
    sheet = pd.DataFrame(
        {
            "Participant": ae["USUBJID"],
            "AE number": ae["USUBJID"] + "-" + ae["AESEQ"].astype(int).astype(str),
            "Onset": pd.to_datetime(ae["AESTDTC"]).dt.strftime("%d/%m/%Y 09:00"),
            "Term": ae["AETERM"],
            "CTCAE grade": ae["AESEV"].map({"MILD": 1, "MODERATE": 2, "SEVERE": 3}),
            "Seriousness criteria": criteria,
            "Outcome": ae["AEOUT"].map(
                {
                    "RECOVERED/RESOLVED": "recovered",
                    "FATAL": "fatal",
                    "NOT RECOVERED/NOT RESOLVED": "not recovered",
                }
            ),
        }
    )
    path = tmp_path / "site-ae.csv"
    sheet.to_csv(path, index=False)
    mapping = MAPPINGS / "site-ae.example.toml"

    summary = await _import(stack, path, mapping, tmp_path / "r.jsonl")

    assert (summary["read"], summary["accepted"], summary["rejected"]) == (len(ae), len(ae), 0)
    serious = int((criteria != "").sum())
    assert {tag: c["accepted"] for tag, c in summary["by_tag"].items()} == {
        "csv:adverse_event:serious": serious,
        "csv:adverse_event:non_serious": len(ae) - serious,
    }
