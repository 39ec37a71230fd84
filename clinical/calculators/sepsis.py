"""SIRS and qSOFA criterion counts from possibly incomplete observations (rules core, calculator).

Sources (RULES.md §4.2): SIRS, ACCP/SCCM consensus 1992 (Bone, Chest 1992;101:1644) — T > 38
or < 36 °C; HR > 90/min; RR > 20/min or PaCO2 < 32 mmHg; WBC > 12 or < 4 ×10^9/L or > 10 %
bands; positive at ≥ 2. The inequalities are strict: 38.0 °C does not meet SIRS (it is CTCAE
Fever G1). qSOFA, Sepsis-3 (Singer, JAMA 2016;315:801) — RR ≥ 22/min, altered mentation,
SBP ≤ 100 mmHg; positive at ≥ 2. Altered mentation per INF-03 [DC]: GCS < 15 or new West
Haven grade ≥ 2.

Missing observations are not guessed: a criterion counts as evaluable when at least one of
its observations is known, and met when any known observation meets it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from clinical.calculators._numbers import Numeric, exact, optional

POSITIVE_AT: Final = 2


@dataclass(frozen=True, slots=True)
class CriteriaCount:
    """How many criteria of a score were met and how many could be evaluated at all."""

    met: tuple[str, ...]
    evaluable: int
    total: int

    @property
    def count(self) -> int:
        """The number of criteria met."""
        return len(self.met)

    @property
    def positive(self) -> bool:
        """At least two criteria are met (SIRS and qSOFA alike)."""
        return self.count >= POSITIVE_AT

    @property
    def could_be_positive(self) -> bool:
        """The criteria not evaluable could still make the score positive."""
        return self.count + (self.total - self.evaluable) >= POSITIVE_AT


@dataclass(frozen=True, slots=True)
class SirsObservations:
    """SIRS inputs; None is unknown. Units: °C, /min, /min, mmHg, 10^9/L, % of WBC."""

    temperature_c: Numeric | None = None
    heart_rate: Numeric | None = None
    respiratory_rate: Numeric | None = None
    paco2_mmhg: Numeric | None = None
    wbc: Numeric | None = None
    bands_percent: Numeric | None = None


# Criterion -> (observation, met below, met above); strict inequalities (RULES.md §4.2).
_SIRS: Final = (
    ("temperature", (("temperature_c", "36", "38"),)),
    ("heart_rate", (("heart_rate", None, "90"),)),
    ("respiration", (("respiratory_rate", None, "20"), ("paco2_mmhg", "32", None))),
    ("white_cells", (("wbc", "4", "12"), ("bands_percent", None, "10"))),
)

# A criterion is a name and one verdict per observation: None unknown, else met or not.
_Criterion = tuple[str, tuple[bool | None, ...]]


def _test(value: Numeric | None, name: str, low: str | None, high: str | None) -> bool | None:
    number = optional(value, name=name)
    if number is None:
        return None
    return (low is not None and number < Decimal(low)) or (
        high is not None and number > Decimal(high)
    )


def _count(criteria: Iterable[_Criterion]) -> CriteriaCount:
    criteria = tuple(criteria)
    known = [(name, [v for v in verdicts if v is not None]) for name, verdicts in criteria]
    met = tuple(name for name, verdicts in known if any(verdicts))
    evaluable = sum(1 for _, verdicts in known if verdicts)
    return CriteriaCount(met=met, evaluable=evaluable, total=len(criteria))


@exact
def sirs(observations: SirsObservations) -> CriteriaCount:
    """Count the SIRS criteria met (ACCP/SCCM 1992; strict inequalities)."""
    return _count(
        (name, tuple(_test(getattr(observations, f), f, low, high) for f, low, high in tests))
        for name, tests in _SIRS
    )


@exact
def qsofa(
    *,
    respiratory_rate: Numeric | None = None,
    altered_mentation: bool | None = None,
    systolic_bp: Numeric | None = None,
) -> CriteriaCount:
    """Count the qSOFA criteria met (Sepsis-3: RR ≥ 22/min, altered mentation, SBP ≤ 100)."""
    rr = optional(respiratory_rate, name="respiratory_rate")
    sbp = optional(systolic_bp, name="systolic_bp")
    return _count(
        (
            ("respiratory_rate", (None if rr is None else rr >= 22,)),
            ("altered_mentation", (altered_mentation,)),
            ("systolic_bp", (None if sbp is None else sbp <= 100,)),
        )
    )


def altered_mentation(*, gcs: int | None = None, new_west_haven: int | None = None) -> bool | None:
    """Decide qSOFA altered mentation from GCS < 15 or a new West Haven grade ≥ 2 (INF-03 [DC])."""
    verdicts = [
        None if gcs is None else gcs < 15,
        None if new_west_haven is None else new_west_haven >= 2,
    ]
    known = [v for v in verdicts if v is not None]
    return any(known) if known else None


__all__ = [
    "CriteriaCount",
    "SirsObservations",
    "altered_mentation",
    "qsofa",
    "sirs",
]
