"""Unit normalisation: RULES.md §0.4 factors, the spellings labs send, clear refusals."""

from __future__ import annotations

import pytest

from services.ingest.core.errors import UnknownUnitError
from services.ingest.core.units import LAB_CATALOGUE, VITAL_CATALOGUE, normalise


@pytest.mark.parametrize(
    ("loinc", "value", "unit", "expected"),
    [
        ("1975-2", 1.2, "mg/dL", 20.52),  # RULES.md §0.4 bilirubin vectors
        ("1975-2", 5, "mg/dL", 85.5),
        ("14631-6", 12, "mg/dl", 205.2),
        ("14631-6", 60, "µmol/L", 60),
        ("14631-6", 60, "μmol/L", 60),  # Greek mu, not the micro sign
        ("14631-6", 60, "umol/l", 60),
        ("2160-0", 0.3, "mg/dL", 26.52),  # creatinine vectors
        ("2160-0", 1.5, "mg/dL", 132.6),
        ("14682-9", 4.0, "mg/dL", 353.6),
        ("718-7", 10.0, "g/dL", 100),  # haemoglobin
        ("1751-7", 3.5, "g/dL", 35),  # albumin
        ("16362-6", 100, "ug/dL", 58.72),  # ammonia x 0.5872
        ("2000-8", 8.016, "mg/dL", 2.0),  # calcium / 4.008
        ("777-3", 75_000, "/mm3", 75),  # platelets
        ("777-3", 75, "10*9/L", 75),
        ("777-3", 75, "10^9/L", 75),
        ("777-3", 75, "GI/L", 75),
        ("6690-2", 4.2, "10*3/uL", 4.2),
        ("6301-6", 1.8, "{INR}", 1.8),
        ("1742-6", 40, "IU/L", 40),
        ("2951-2", 130, "mEq/L", 130),
    ],
)
def test_lab_value_is_converted_to_the_canonical_unit(
    loinc: str, value: float, unit: str, expected: float
) -> None:
    """Thresholds apply to normalised values, converted without intermediate rounding."""
    assert normalise(value, LAB_CATALOGUE[loinc], unit) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("value", "unit", "expected"), [(100.4, "[degF]", 38.0), (38.5, "Cel", 38.5)]
)
def test_temperature_is_converted_to_celsius(value: float, unit: str, expected: float) -> None:
    """°F is converted with its offset, not just a factor."""
    assert normalise(value, VITAL_CATALOGUE["temperature"], unit) == expected


@pytest.mark.parametrize(
    ("loinc", "unit"),
    [
        ("1742-6", "mmol/L"),
        ("1975-2", "stones"),
        ("1975-2", "mg"),
        ("777-3", "%"),
        ("1975-2", "<b>"),
    ],
)
def test_unknown_or_unconvertible_unit_is_refused(loinc: str, unit: str) -> None:
    """An unknown unit is a clear rejection, never a silent guess."""
    with pytest.raises(UnknownUnitError, match=repr(unit).replace("[", r"\[")):
        normalise(1.0, LAB_CATALOGUE[loinc], unit)
