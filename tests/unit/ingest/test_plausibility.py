"""Impossible values are refused at ingest with the field and the reason; extremes are kept."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from services.ingest.core.accept import Accepted, Rejection, accept

NOW = datetime(2024, 3, 1, 12, tzinfo=UTC)


def _lab(loinc: str, value: float, unit: str) -> dict[str, Any]:
    return {
        "event_type": "lab_result_recorded",
        "trial_id": "NCT01724398",
        "site_id": "S01",
        "participant_id": "P-001",
        "occurred_at": "2024-03-01T08:00:00Z",
        "source": "lab",
        "source_ref": f"r-{uuid4().hex}",
        "payload": {"loinc": loinc, "result": {"value": value, "unit": unit}},
    }


def _vital(name: str, value: float, unit: str) -> dict[str, Any]:
    item = _lab("718-7", 1, "g/L")
    item["event_type"] = "vital_signs_recorded"
    item["payload"] = {"observations": {name: {"value": value, "unit": unit}}}
    return item


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (_lab("777-3", -5, "10*9/L"), "payload.result.value"),  # negative count
        (_lab("6301-6", 0, "{INR}"), "payload.result.value"),  # INR of 0
        (_vital("temperature", 80, "Cel"), "payload.observations.temperature.value"),
        (_vital("temperature", 176, "[degF]"), "payload.observations.temperature.value"),
        (_vital("spo2", 104, "%"), "payload.observations.spo2.value"),
    ],
)
def test_impossible_value_is_refused_with_field_and_reason(
    item: dict[str, Any], field: str
) -> None:
    """Negative counts, INR 0, 80 °C (also as 176 °F), SpO2 104 % are refused, said where/why."""
    result = accept(item, recorded_at=NOW, actor="tester")

    assert isinstance(result, Rejection)
    assert [e.field for e in result.errors] == [field]
    assert "not a possible" in result.errors[0].reason


@pytest.mark.parametrize(
    "item",
    [
        _lab("1975-2", 52.6, "mg/dL"),  # bilirubin 900 µmol/L: extreme ACLF, possible
        _lab("6301-6", 9.5, "{INR}"),
        _vital("temperature", 42.0, "Cel"),
        _vital("temperature", 95.0, "[degF]"),  # 35 °C
    ],
)
def test_plausible_but_extreme_values_are_accepted(item: dict[str, Any]) -> None:
    """Extremes that can happen are accepted (and graded by the rules), never clipped."""
    assert isinstance(accept(item, recorded_at=NOW, actor="tester"), Accepted)


def test_mass_per_cell_bilirubin_is_a_unit_error() -> None:
    """'bilirubin in a unit of mass per cell' is refused on its unit, naming the unit field."""
    result = accept(_lab("1975-2", 3, "mg/{cell}"), recorded_at=NOW, actor="tester")

    assert isinstance(result, Rejection)
    assert [e.field for e in result.errors] == ["payload.result.unit"]
