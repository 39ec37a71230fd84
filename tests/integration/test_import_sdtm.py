"""The CDISC pilot (DM, AE + SUPPAE, EX, LB, VS, DS) through the SDTM importer, on the real files.

Expected numbers are counted here from the source files with pyreadstat and pandas, never with
the importer under test. LB and VS come from pharmaversesdtm (the original pilot folder has
neither); DM, AE, SUPPAE, EX and DS from sdtm_original.

The whole pilot through the running stack took ~110 s on these shared 2-core machines (54.5k
events, twice), so: the full domains are checked on the pure mapping layer plus ingest's own
pure `accept` (validation and unit normalisation of every event); the stack, with real NATS and
SMTP, gets the full DM, AE, SUPPAE and EX and the LB and VS rows of a dozen participants.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyreadstat
import pytest
import structlog.testing
from typer.testing import CliRunner

from kit.auth import bearer_headers
from safetymon.cli import app
from safetymon.importers._types import Mapped, Unmapped
from safetymon.importers.files import find_sdtm, read_table, read_toml
from safetymon.importers.sdtm import map_study, study_from_toml
from safetymon.runner import Stack
from services.ingest.core.accept import Accepted, accept

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "cdiscpilot01"
ORIGINAL, PHARMAVERSE = DATA / "sdtm_original", DATA / "pharmaversesdtm"
MAPPING = Path(__file__).resolve().parents[2] / "safetymon/importers/mappings/cdiscpilot01.toml"
#: The SDTM tests whose LOINC codes RULES.md §0.5 lists and the pilot measures.
MONITORED_LB = {
    "ALB",
    "ALP",
    "ALT",
    "AST",
    "BILI",
    "CA",
    "CREAT",
    "GGT",
    "HCT",
    "HGB",
    "K",
    "PLAT",
    "SODIUM",
    "WBC",
}
MONITORED_VS = {"SYSBP", "DIABP", "PULSE", "TEMP"}
CRITERIA = ["AESDTH", "AESLIFE", "AESHOSP", "AESDISAB", "AESCONG"]
#: Participants whose LB and VS go through the stack: the censored bilirubin (<0.2 mg/dL),
#: unscheduled visits, and the first ten of the DM file.
CENSORED_BILI = "01-701-1363"


def _xpt(name: str) -> pd.DataFrame:
    frame, _ = pyreadstat.read_xport(str(ORIGINAL / f"{name}.xpt"))
    return frame


def _expected(lb: pd.DataFrame, vs: pd.DataFrame) -> dict[str, Any]:
    arms = tomllib.loads(MAPPING.read_text())["arms"]
    dm, ae, ex, ds = _xpt("dm"), _xpt("ae"), _xpt("ex"), _xpt("ds")
    serious = int(((ae[CRITERIA] == "Y").any(axis=1) | (ae["AESER"] == "Y")).sum())
    vs_done = vs[vs["VSTESTCD"].isin(MONITORED_VS) & (vs["VSSTAT"] != "NOT DONE")]
    tags = {f"DM:arm={arms[c]}": n for c, n in dm["ARMCD"].value_counts().items() if c in arms}
    tags |= {"AE:serious": serious, "AE:non_serious": len(ae) - serious}
    tags |= {"EX:uc_msc_infusion": (ex["EXTRT"] == "XANOMELINE").sum()}
    tags |= {f"LB:{t}": n for t, n in lb["LBTESTCD"].value_counts().items() if t in MONITORED_LB}
    tags |= {f"VS:{t}": n for t, n in vs_done["VSTESTCD"].value_counts().items()}
    # One death per participant, tagged by the domains that record it; every DS row is a
    # record (DEATH carries the death, the others are listed as skipped), and a death only DM
    # records is one record more.
    died_dm = set(dm[dm["DTHFL"] == "Y"]["USUBJID"])
    died_ds = set(ds[ds["DSDECOD"] == "DEATH"]["USUBJID"])
    tags |= {
        "DEATH:DM+DS": len(died_dm & died_ds),
        "DEATH:DM": len(died_dm - died_ds),
        "DEATH:DS": len(died_ds - died_dm),
    }
    return {
        "read": len(dm) + len(ae) + len(ex) + len(lb) + len(vs) + len(ds) + len(died_dm - died_ds),
        "by_tag": {tag: int(n) for tag, n in tags.items() if n},
    }


def _pharmaverse(name: str) -> pd.DataFrame:
    return pd.read_csv(PHARMAVERSE / f"{name}.csv.gz", dtype=str, keep_default_na=False)


def test_every_record_of_the_full_pilot_maps_and_passes_ingest_validation() -> None:
    """Full domains: counts per arm, AE seriousness, EX, labs and vitals per test; 0 rejected."""
    expected = _expected(_pharmaverse("lb"), _pharmaverse("vs"))
    study = study_from_toml(read_toml(MAPPING))
    found = find_sdtm([ORIGINAL, PHARMAVERSE])
    domains = {name: [r for p in files for r in read_table(p)] for name, files in found.items()}

    outcomes = list(map_study(domains, study))

    mapped = [o for o in outcomes if isinstance(o, Mapped)]
    unmapped = [o for o in outcomes if isinstance(o, Unmapped)]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    verdicts = [accept(m.submission, recorded_at=now, actor="test") for m in mapped]
    assert [v for v in verdicts if not isinstance(v, Accepted)] == []
    assert dict(Counter(m.tag for m in mapped)) == expected["by_tag"]
    assert len(outcomes) == expected["read"]  # SUPPAE rows qualify AE rows: no records
    assert {u.status for u in unmapped} == {"skipped"}
    censored = [
        v.wire["payload"]["result"]
        for v in verdicts
        if isinstance(v, Accepted) and v.wire["payload"].get("result", {}).get("comparator")
    ]
    # LBSTRESC '<3.42' umol/L (LBORRES '<0.2' mg/dL): five bilirubins in the pilot.
    assert (
        censored
        == [
            {
                "value": 3.42,
                "unit": "umol/L",
                "comparator": "<",
                "normalised_value": 3.42,
                "normalised_unit": "umol/L",
            }
        ]
        * 5
    )


def _subset(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """LB and VS rows (unchanged) of a dozen participants, as CSV files in `directory`."""
    dm = _xpt("dm")
    chosen = set(dm["USUBJID"].head(10)) | {CENSORED_BILI}
    lb, vs = _pharmaverse("lb"), _pharmaverse("vs")
    unscheduled = lb[lb["VISIT"].str.startswith("UNSCHEDULED")]["USUBJID"].iloc[0]
    chosen.add(unscheduled)
    directory.mkdir()
    lb, vs = lb[lb["USUBJID"].isin(chosen)], vs[vs["USUBJID"].isin(chosen)]
    lb.to_csv(directory / "lb.csv", index=False)
    vs.to_csv(directory / "vs.csv", index=False)
    return lb, vs


async def _import(stack: Stack, subset: Path, reasons: Path) -> dict[str, Any]:
    url = f"http://127.0.0.1:{stack.http_port}"
    args = [
        "ingest",
        "--format",
        "sdtm",
        "--mapping",
        str(MAPPING),
        "--url",
        url,
        "--reasons",
        str(reasons),
        str(ORIGINAL),
        str(subset),
    ]
    # The command is synchronous and the services share this event loop: run it in a thread.
    with structlog.testing.capture_logs():
        result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


async def _log_head(stack: Stack) -> int:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.http_port}") as client:
        response = await client.get("/v1/log/head", headers=bearer_headers())
    seq: int = response.json()["seq"]
    return seq


async def test_the_pilot_goes_through_the_stack_and_a_second_import_adds_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    """DM, AE, EX, DS in full and a dozen participants' LB and VS: counts, then duplicates."""
    expected = _expected(*_subset(tmp_path / "subset"))

    first = await _import(stack, tmp_path / "subset", tmp_path / "first.jsonl")
    head = await _log_head(stack)
    second = await _import(stack, tmp_path / "subset", tmp_path / "second.jsonl")

    in_log = {tag: c["accepted"] + c["duplicate"] for tag, c in first["by_tag"].items()}
    assert in_log == expected["by_tag"]
    events = sum(expected["by_tag"].values())
    assert (first["read"], first["accepted"], first["rejected"]) == (expected["read"], events, 0)
    assert first["skipped"] == expected["read"] - events
    assert head == events  # every accepted record is exactly one event on the log
    assert (second["accepted"], second["duplicate"], second["rejected"]) == (0, events, 0)
    assert await _log_head(stack) == head
    reasons = [json.loads(line) for line in (tmp_path / "first.jsonl").read_text().splitlines()]
    assert len(reasons) == first["skipped"]
    assert {r["status"] for r in reasons} == {"skipped"}
    assert any(r["field"] == "LBTESTCD" and "'CHOL'" in r["reason"] for r in reasons)


async def test_bad_records_are_named_in_the_reasons_file_and_the_good_ones_still_land(
    stack: Stack, tmp_path: Path
) -> None:
    """An unknown unit is rejected by ingest; a bad date and a conflicting repeat locally."""
    study = tmp_path / "study"
    study.mkdir()
    (study / "dm.csv").write_text(
        "STUDYID,USUBJID,SITEID,ARMCD,RFSTDTC,SEX\nPILOT,01-701-1015,701,Pbo,2014-01-02,F\n"
    )
    lb_header = "STUDYID,USUBJID,LBSEQ,LBTESTCD,LBSTRESN,LBSTRESC,LBSTRESU,LBDTC\n"
    (study / "lb.csv").write_text(
        lb_header
        + "PILOT,01-701-1015,1,ALT,30,30,U/L,2014-01-02T08:00\n"
        + "PILOT,01-701-1015,2,BILI,1.1,1.1,mg/furlong,2014-01-02T08:00\n"
        + "PILOT,01-701-1015,3,AST,25,25,U/L,2014-02-31\n"
        + "PILOT,01-701-1015,1,ALT,31,31,U/L,2014-01-02T08:00\n"
    )
    url = f"http://127.0.0.1:{stack.http_port}"
    reasons = tmp_path / "reasons.jsonl"
    args = [
        "ingest",
        "--format",
        "sdtm",
        "--mapping",
        str(MAPPING),
        "--url",
        url,
        "--reasons",
        str(reasons),
        str(study),
    ]

    with structlog.testing.capture_logs():
        result = await asyncio.to_thread(CliRunner().invoke, app, args)

    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert {k: summary[k] for k in ("read", "accepted", "duplicate", "rejected", "skipped")} == {
        "read": 5,
        "accepted": 2,
        "duplicate": 0,
        "rejected": 3,
        "skipped": 0,
    }
    lines = [json.loads(line) for line in reasons.read_text().splitlines()]
    by_record = {line["source_id"]: (line["field"], line["reason"]) for line in lines}
    assert by_record["LB:01-701-1015:AST:LBSEQ=3"][0] == "LBDTC"
    assert by_record["LB:01-701-1015:ALT:LBSEQ=1"][0] == "source_ref"
    field, reason = by_record["LB:01-701-1015:BILI:LBSEQ=2"]
    assert field == "payload.result.unit"
    assert "mg/furlong" in reason
