"""Unit normalisation for lab results and vital signs (pure; pint does the dimensional work).

Canonical units are SI as RULES.md §0.4 fixes them (bilirubin and creatinine in µmol/L,
counts in 10^9/L, temperature in °C). Mass <-> substance conversions use the molar masses
that reproduce RULES.md's factors exactly (bilirubin ×17.1, creatinine ×88.4, ammonia
×0.5872, calcium ×4.008). An unknown unit is an error, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import pint

from services.ingest.core.errors import UnknownUnitError

_UREG: Final[pint.UnitRegistry[float]] = pint.UnitRegistry(cache_folder=None)


@dataclass(frozen=True, slots=True)
class Analyte:
    """What a LOINC code measures and the canonical unit it is stored in."""

    name: str
    canonical: str  # UCUM code stored as normalised_unit
    pint_canonical: str
    molar_mass: float | None = None  # g/mol, for mass <-> substance conversion


_UMOL_L = ("umol/L", "umol/L")
_MMOL_L = ("mmol/L", "mmol/L")
_COUNT = ("10*9/L", "1e9/L")
_BILIRUBIN = Analyte("bilirubin", *_UMOL_L, molar_mass=10_000 / 17.1)
_CREATININE = Analyte("creatinine", *_UMOL_L, molar_mass=10_000 / 88.4)
_CALCIUM = Analyte("calcium", *_MMOL_L, molar_mass=40.08)
_IONISED_CALCIUM = Analyte("ionised_calcium", *_MMOL_L, molar_mass=40.08)
_AMMONIA = Analyte("ammonia", *_UMOL_L, molar_mass=10 / 0.5872)  # NH3, as RULES.md §0.4

#: LOINC code -> analyte (RULES.md §0.5).
LAB_CATALOGUE: Final[dict[str, Analyte]] = {
    "1742-6": Analyte("alt", "U/L", "U/L"),
    "1920-8": Analyte("ast", "U/L", "U/L"),
    "6768-6": Analyte("alp", "U/L", "U/L"),
    "2324-2": Analyte("ggt", "U/L", "U/L"),
    "1975-2": _BILIRUBIN,
    "14631-6": _BILIRUBIN,
    "6301-6": Analyte("inr", "{INR}", "dimensionless"),
    "5902-2": Analyte("prothrombin_time", "s", "s"),
    "2160-0": _CREATININE,
    "14682-9": _CREATININE,
    "2951-2": Analyte("sodium", *_MMOL_L),
    "2823-3": Analyte("potassium", *_MMOL_L),
    "17861-6": _CALCIUM,
    "2000-8": _CALCIUM,
    "1994-3": _IONISED_CALCIUM,
    "1995-0": _IONISED_CALCIUM,
    "1751-7": Analyte("albumin", "g/L", "g/L"),
    "718-7": Analyte("haemoglobin", "g/L", "g/L", molar_mass=16_114.5),
    "4544-3": Analyte("haematocrit", "%", "percent"),
    "6690-2": Analyte("wbc", *_COUNT),
    "751-8": Analyte("neutrophils", *_COUNT),
    "777-3": Analyte("platelets", *_COUNT),
    "16362-6": _AMMONIA,
    "22763-7": _AMMONIA,
    "33959-8": Analyte("procalcitonin", "ng/mL", "ng/mL"),
    "75241-0": Analyte("procalcitonin", "ng/mL", "ng/mL"),
    "1988-5": Analyte("crp", "mg/L", "mg/L"),
    "2524-7": Analyte("lactate", *_MMOL_L, molar_mass=90.08),
    # Blood culture as a growth flag (1 organism grown, 0 no growth); the organism itself is
    # the infection rules' concern (RULES.md INF-05), not a unit conversion.
    "600-7": Analyte("blood_culture", "1", "dimensionless"),
}

#: Vital sign -> canonical unit.
VITAL_CATALOGUE: Final[dict[str, Analyte]] = {
    "temperature": Analyte("temperature", "Cel", "degC"),
    "heart_rate": Analyte("heart_rate", "/min", "1/min"),
    "respiratory_rate": Analyte("respiratory_rate", "/min", "1/min"),
    "systolic_bp": Analyte("systolic_bp", "mm[Hg]", "mmHg"),
    "diastolic_bp": Analyte("diastolic_bp", "mm[Hg]", "mmHg"),
    "mean_arterial_pressure": Analyte("mean_arterial_pressure", "mm[Hg]", "mmHg"),
    "spo2": Analyte("spo2", "%", "percent"),
    "gcs": Analyte("gcs", "{score}", "dimensionless"),
    # Hourly urine output per kg body weight (RULES.md AKI-05); mL/h alone is refused, as
    # the weight it needs is not on the wire.
    "urine_output": Analyte("urine_output", "mL/kg/h", "mL/kg/h"),
}

#: Physically impossible values, in the canonical unit: [lowest, highest] possible. Bad input
#: is refused, not graded. The bounds are wide on purpose: a plausible-but-extreme value
#: (bilirubin 900 µmol/L, temperature 42 °C) is accepted and graded; only what cannot be is refused.
POSSIBLE: Final[dict[str, tuple[float, float]]] = {
    "alt": (0, 100_000),
    "ast": (0, 100_000),
    "bilirubin": (0, 3000),
    "creatinine": (0, 5000),
    "inr": (0.1, 30),
    "sodium": (60, 220),
    "potassium": (0.5, 15),
    "calcium": (0.1, 10),
    "ionised_calcium": (0.05, 5),
    "albumin": (0, 120),
    "haemoglobin": (0, 300),
    "wbc": (0, 1000),
    "neutrophils": (0, 1000),
    "platelets": (0, 5000),
    "ammonia": (0, 5000),
    "procalcitonin": (0, 10_000),
    "crp": (0, 2000),
    "lactate": (0, 50),
    "blood_culture": (0, 1),
    "temperature": (20, 46),
    "heart_rate": (0, 350),
    "respiratory_rate": (0, 120),
    "systolic_bp": (0, 350),
    "diastolic_bp": (0, 300),
    "mean_arterial_pressure": (0, 300),
    "spo2": (0, 100),
    "gcs": (3, 15),
    "urine_output": (0, 50),
}


def impossible(value: float, analyte: Analyte) -> str | None:
    """Why a canonical value cannot be real (None when it can)."""
    bounds = POSSIBLE.get(analyte.name)
    if bounds is None or bounds[0] <= value <= bounds[1]:
        return None
    low, high = bounds
    return (
        f"{value:g} {analyte.canonical} is not a possible {analyte.name} value "
        f"(possible: {low:g} to {high:g} {analyte.canonical})"
    )


# Spellings labs send that pint cannot parse as they stand (UCUM codes, SDTM units).
_ALIASES: Final[dict[str, str]] = {
    "{inr}": "dimensionless",
    "inr": "dimensionless",
    "ratio": "dimensionless",
    "1": "dimensionless",
    "{ratio}": "dimensionless",
    "{score}": "dimensionless",
    "{index}": "dimensionless",
    "cel": "degC",
    "°c": "degC",
    "degc": "degC",
    "c": "degC",
    "℃": "degC",
    "[degf]": "degF",
    "°f": "degF",
    "degf": "degF",
    "f": "degF",
    "mm[hg]": "mmHg",
    "mmhg": "mmHg",
    "%": "percent",
    "l/l": "dimensionless",
    "/min": "1/min",
    "{beats}/min": "1/min",
    "bpm": "1/min",
    "{breaths}/min": "1/min",
    "u/l": "U/L",
    "iu/l": "U/L",
    "[iu]/l": "U/L",
    "u/ml": "U/mL",
    "meq/l": "mmol/L",  # monovalent ions only (Na, K); enforced by dimensionality below
    "gi/l": "1e9/L",
    "ti/l": "1e12/L",
    "/nl": "1e9/L",
    "/mm3": "1/mm**3",
    "/mm^3": "1/mm**3",
    "cells/mm3": "1/mm**3",
    "/ul": "1/uL",
    "cells/ul": "1/uL",
    "{cells}/ul": "1/uL",
    "s": "s",
    "sec": "s",
}
_POWER_OF_TEN: Final = re.compile(r"^10[\*\^](\d{1,2})/(.+)$")


def _pint_expression(unit: str) -> str:
    text = unit.strip().replace("µ", "u").replace("μ", "u")  # micro sign and Greek mu
    alias = _ALIASES.get(text.lower())
    if alias is not None:
        return alias
    power = _POWER_OF_TEN.match(text)
    if power:  # UCUM 10*9/L, 10^9/L, 10*3/uL
        return f"1e{power.group(1)}/{power.group(2)}"
    text = re.sub(r"(?<=[a-zA-Z])l$", "L", text)  # mg/dl, umol/l
    if not re.fullmatch(r"[A-Za-z0-9/.*\s]+", text):
        raise UnknownUnitError(f"unit {unit!r} is not a recognised unit")
    return text


Converter = Callable[[float], float]


@lru_cache(maxsize=1024)
def converter(analyte: Analyte, unit: str) -> Converter:
    """Return a function converting values in `unit` to the analyte's canonical unit."""
    try:
        source = _UREG.parse_expression(_pint_expression(unit))
        target = _UREG.parse_expression(analyte.pint_canonical)
    except (pint.errors.PintError, AttributeError, TypeError, ValueError, SyntaxError) as exc:
        raise UnknownUnitError(f"unit {unit!r} is not a recognised unit") from exc
    if not isinstance(source, pint.Quantity):  # a bare number such as "7"
        raise UnknownUnitError(f"unit {unit!r} is not a recognised unit")
    if source.units.dimensionality.get("[temperature]"):
        unit_only = source.units

        def offset(value: float) -> float:
            return float(_UREG.Quantity(value, unit_only).to(analyte.pint_canonical).magnitude)

        offset(0.0)  # a unit of another dimension fails here, not on the first value
        return offset
    factor = _factor(source, target, analyte, unit)
    return lambda value: value * factor


def _factor(
    source: Any,  # noqa: ANN401 - pint quantities are untyped
    target: Any,  # noqa: ANN401
    analyte: Analyte,
    unit: str,
) -> float:
    if source.dimensionality == target.dimensionality:
        return float((source / target).to("dimensionless").magnitude)
    if analyte.molar_mass is not None:
        molar_mass = _UREG.Quantity(analyte.molar_mass, "g/mol")
        for candidate in (source / molar_mass, source * molar_mass):
            if candidate.dimensionality == target.dimensionality:
                return float((candidate / target).to("dimensionless").magnitude)
    raise UnknownUnitError(
        f"unit {unit!r} cannot be converted to {analyte.canonical} for {analyte.name}"
    )


def normalise(value: float, analyte: Analyte, unit: str) -> float:
    """Convert a value to the canonical unit, removing float noise (12 significant digits)."""
    return float(f"{converter(analyte, unit)(value):.12g}")
