"""SDTM round trip: the pilot's AEs in through the stack, out with `safetymon export sdtm`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pyreadstat
import pytest
import structlog.testing
from typer.testing import CliRunner

from safetymon.cli import app
from safetymon.runner import Stack

pytestmark = pytest.mark.integration

PILOT = Path(__file__).resolve().parents[3] / "shared" / "data" / "cdiscpilot01" / "sdtm_original"
MAPPING = Path(__file__).resolve().parents[2] / "safetymon/importers/mappings/cdiscpilot01.toml"
KEPT = ["AETERM", "AESEV", "AEOUT", "AEREL", "AESTDTC", "AEENDTC",
        "AESDTH", "AESLIFE", "AESHOSP", "AESDISAB", "AESCONG"]  # fmt: skip


async def test_the_pilots_aes_come_back_as_they_went_in(stack: Stack, tmp_path: Path) -> None:
    study = tmp_path / "study"
    study.mkdir()
    for name in ("dm", "ae", "suppae"):
        (study / f"{name}.xpt").symlink_to(PILOT / f"{name}.xpt")
    url = f"http://127.0.0.1:{stack.http_port}"
    out = tmp_path / "ae_out.xpt"
    runner = CliRunner()
    with structlog.testing.capture_logs():
        imported = await asyncio.to_thread(
            runner.invoke, app, ["ingest", "--format", "sdtm", "--mapping", str(MAPPING),
                                 "--url", url, "--reasons", str(tmp_path / "r.jsonl"),
                                 str(study)])  # fmt: skip
        exported = await asyncio.to_thread(
            runner.invoke, app, ["export", "sdtm", "--domain", "AE", "--url", url,
                                 "--out", str(out)])  # fmt: skip

    assert imported.exit_code == 0, imported.output
    assert exported.exit_code == 0, exported.output
    original, _ = pyreadstat.read_xport(str(PILOT / "ae.xpt"))
    back, _ = pyreadstat.read_xport(str(out))
    assert json.loads(exported.stdout)["rows"] == len(original) == len(back)
    key = ["USUBJID", "AESEQ"]
    original["AESEQ"] = original["AESEQ"].astype(int).astype(str)
    merged = original.merge(back, on=key, suffixes=("_in", "_out"), validate="one_to_one")
    assert len(merged) == len(original)
    for column in KEPT:
        differing = merged[merged[f"{column}_in"] != merged[f"{column}_out"]]
        assert differing.empty, (column, differing[[*key, f"{column}_in", f"{column}_out"]])
    # AESER comes back derived from the criteria (the pilot says N for 33 flagged AEs).
    flagged = (original[KEPT[6:]] == "Y").any(axis=1) | (original["AESER"] == "Y")
    assert (back.set_index(key).loc[merged.set_index(key).index, "AESER"] == "Y").sum() == int(
        flagged.sum()
    )
