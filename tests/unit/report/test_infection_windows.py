"""The DSMB report's procedure windows and infection findings are the clinical kernel's.

Hand-worked feed (one participant, arm B, site time UTC+8):
- PE at day 2 10:00Z (ended 13:00Z), UC-MSC at day 10 08:00Z sent without its end (30 min).
- An infection AE at exactly the PE start: not "after PE" (W_INF_PE is open at its start);
  another 30 h after it: after PE.
- A chills AE at day 10 08:20Z, during the infusion sent without an end: an infusion
  reaction (W_IR_MSC from the assumed end 08:30Z + 24 h).
- Fever 38.4 °C 30 h after the PE (after PE), 37.9 °C (no finding), 38.0 °C on day 30
  (outside the windows: day 10 + 7 d < day 30).
- Ascitic fluid WBC 6690-2 of 300/mm³ = 0.3 x10^9/L: no blood WBC (no lab kind, no grade);
  ascitic PMN 751-8 0.3 x10^9/L: SBP on day 11 (after UC-MSC).
- Blood cultures: S. epidermidis (commensal) on day 12 03:00Z alone is no bacteraemia; the
  same organism again at day 12 20:00Z (day 13 at the site) is; S. aureus on day 40 alone is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.report.adapters.duckdb_source import DuckDBLogSource
from services.report.core.config import ReportConfig
from services.report.core.model import InfectionFindingCount
from tests.unit.report.eventlog import build_event_log, running_clock

TRIAL = "NCT01724398"
T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return T0 + timedelta(days=day - 1, hours=hour, minutes=minute)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _item(kind: str, at: datetime, ref: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_type": kind, "trial_id": TRIAL, "site_id": "S01", "participant_id": "P1",
        "occurred_at": _iso(at), "source": "edc", "source_ref": ref, "payload": payload,
    }  # fmt: skip


def _ae(at: datetime, ref: str, term: str) -> dict[str, Any]:
    payload = {"ae_ref": ref, "term": term, "ctcae_grade": 2}
    return _item("adverse_event_reported", at, ref, payload)


def _lab(
    at: datetime, ref: str, loinc: str, value: float, unit: str, **extra: Any
) -> dict[str, Any]:
    payload = {"loinc": loinc, "result": {"value": value, "unit": unit}, **extra}
    return _item("lab_result_recorded", at, ref, payload)


def _fever(at: datetime, ref: str, celsius: float) -> dict[str, Any]:
    payload = {"observations": {"temperature": {"value": celsius, "unit": "Cel"}}}
    return _item("vital_signs_recorded", at, ref, payload)


EPIDERMIDIS = {"code": "60875001", "display": "Staphylococcus epidermidis"}
AUREUS = {"code": "3092008", "display": "Staphylococcus aureus"}


def _feed() -> list[dict[str, Any]]:
    pe_start = _at(2, 10)
    return [
        _item("participant_enrolled", _at(1), "rand", {"arm": "B"}),
        _item("treatment_administered", pe_start, "pe1", {
            "treatment": "plasma_exchange", "volume_ml": 3000, "ended_at": _iso(_at(2, 13))}),
        _ae(pe_start, "AE-AT-START", "Urinary tract infection"),
        _ae(pe_start + timedelta(hours=30), "AE-AFTER-PE", "Lung infection"),
        _fever(pe_start + timedelta(hours=30), "v1", 38.4),
        _fever(pe_start + timedelta(hours=31), "v2", 37.9),
        _item("treatment_administered", _at(10, 8), "msc1", {
            "treatment": "uc_msc_infusion", "dose_cells_per_kg": 1e6}),
        _ae(_at(10, 8, 20), "AE-CHILLS", "Chills"),
        _lab(_at(11), "wbc-asc", "6690-2", 300, "/mm3", specimen="ascitic_fluid"),
        _lab(_at(11, 1), "pmn-asc", "751-8", 0.3, "10*9/L", specimen="ascitic_fluid"),
        _lab(_at(12, 3), "bc1", "600-7", 1, "1", specimen="blood", organism=EPIDERMIDIS),
        _lab(_at(12, 20), "bc2", "600-7", 1, "1", specimen="blood", organism=EPIDERMIDIS),
        _fever(_at(30), "v3", 38.0),
        _lab(_at(40), "bc3", "600-7", 1, "1", specimen="blood", organism=AUREUS),
    ]  # fmt: skip


@pytest.mark.slow
def test_windows_and_infection_findings_are_the_kernels(tmp_path: Path) -> None:
    path = build_event_log(_feed(), tmp_path, recorded_at=running_clock())
    extract = DuckDBLogSource(path).extract(datetime(2030, 1, 1, tzinfo=UTC), ReportConfig())

    infection = {(a.window, a.events) for a in extract.aesi if a.category == "infection"}
    assert infection == {("after PE", 1), ("outside procedure windows", 1)}
    assert {a.category for a in extract.aesi if a.window == "after UC-MSC"} == {"infusion_reaction"}
    assert set(extract.infection_findings) == {
        InfectionFindingCount("fever", _label("fever"), "after PE", "B", 1, 1),
        InfectionFindingCount("fever", _label("fever"), "outside procedure windows", "B", 1, 1),
        InfectionFindingCount("sbp", _label("sbp"), "after UC-MSC", "B", 1, 1),
        InfectionFindingCount("bacteraemia", _label("bacteraemia"), "after UC-MSC", "B", 1, 1),
        InfectionFindingCount(
            "bacteraemia", _label("bacteraemia"), "outside procedure windows", "B", 1, 1
        ),
    }
    # The ascitic WBC is no blood WBC: nothing to grade, so no shift row counts it.
    assert all(s.term != "White blood cell decreased" for s in extract.shifts)


def _label(finding: str) -> str:
    from services.report.adapters.clinical_sql import FINDINGS

    return FINDINGS[finding]
