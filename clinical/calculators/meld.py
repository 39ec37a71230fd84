"""MELD, MELD-Na and MELD 3.0 scores as OPTN computes them (rules core, pure calculator).

Sources (RULES.md §5.1, vectors §5.2):
- Original MELD: OPTN Policy 9.1.D (pre-2016 text, quoted in MIT-LCP mimic-code
  `meld.sql`): MELD(i) = 0.957·ln Cr + 0.378·ln bilirubin + 1.120·ln INR + 0.643; any lab
  value < 1.0 is set to 1.0; Cr is set to 4.0 mg/dL when above it or after ≥ 2 dialysis
  treatments / 24 h of CVVHD in the prior week; MELD(i) is rounded to the tenth and
  multiplied by 10; maximum 40.
- MELD-Na: OPTN 2016. Applied only when MELD > 11: MELD + 1.32·(137 − Na) −
  0.033·MELD·(137 − Na), Na bounded to [125, 137] mmol/L, rounded, maximum 40.
- MELD 3.0: Kim WR et al., Gastroenterology 2021;161:1887 (OPTN allocation since July 2023);
  bilirubin, INR, Cr ≥ 1.0, Cr ≤ 3.0 (dialysis ⇒ 3.0), Na [125, 137], albumin [1.5, 3.5]
  g/dL, rounded. Whether OPTN caps it at 40 is [UNCONF], so both values are returned.

Inputs are conventional units (mg/dL, g/dL, mmol/L); the `*_mg_dl`/`albumin_g_dl` helpers
convert SI (RULES.md §0.4 factors). Arithmetic is exact decimal, rounding half up.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from clinical.calculators._numbers import (
    Numeric,
    clamp,
    exact,
    ln,
    non_negative,
    required,
    round_half_up,
)

MELD_CAP: Final = 40
MELD_NA_THRESHOLD: Final = 11  # MELD-Na adjusts only MELD > 11 (OPTN 2016)
BILIRUBIN_UMOL_PER_MG_DL: Final = Decimal("17.1")
CREATININE_UMOL_PER_MG_DL: Final = Decimal("88.4")
_CR_MAX_MELD: Final = Decimal("4.0")
_CR_MAX_MELD_3: Final = Decimal("3.0")
_NA_LOW: Final = Decimal(125)
_NA_HIGH: Final = Decimal(137)
_ALB_LOW: Final = Decimal("1.5")
_ALB_HIGH: Final = Decimal("3.5")


@dataclass(frozen=True, slots=True)
class MeldLabs:
    """Inputs of the MELD family in conventional units, collected within 48 h of each other.

    Attributes:
        bilirubin: total bilirubin, mg/dL.
        inr: international normalised ratio.
        creatinine: serum creatinine, mg/dL.
        sodium: serum sodium, mmol/L (MELD-Na, MELD 3.0).
        albumin: serum albumin, g/dL (MELD 3.0).
        dialysis: ≥ 2 dialysis treatments or 24 h of CVVHD in the prior week.

    """

    bilirubin: Numeric
    inr: Numeric
    creatinine: Numeric
    sodium: Numeric | None = None
    albumin: Numeric | None = None
    dialysis: bool = False


@dataclass(frozen=True, slots=True)
class Meld3Score:
    """MELD 3.0 rounded to an integer, without and with the [UNCONF] cap at 40."""

    uncapped: int
    capped: int


@exact
def bilirubin_mg_dl(umol_per_l: Numeric) -> Decimal:
    """Convert bilirubin µmol/L to mg/dL (÷ 17.1, RULES.md §0.4)."""
    return non_negative(umol_per_l, name="bilirubin") / BILIRUBIN_UMOL_PER_MG_DL


@exact
def creatinine_mg_dl(umol_per_l: Numeric) -> Decimal:
    """Convert creatinine µmol/L to mg/dL (÷ 88.4, RULES.md §0.4)."""
    return non_negative(umol_per_l, name="creatinine") / CREATININE_UMOL_PER_MG_DL


@exact
def albumin_g_dl(g_per_l: Numeric) -> Decimal:
    """Convert albumin g/L to g/dL (÷ 10, RULES.md §0.4)."""
    return non_negative(g_per_l, name="albumin") / 10


def _needed(value: Numeric | None, name: str) -> Decimal:
    return non_negative(required(value, name=name), name=name)


def _creatinine(labs: MeldLabs, cap: Decimal) -> Decimal:
    if labs.dialysis:
        return cap
    return clamp(non_negative(labs.creatinine, name="creatinine"), high=cap)


@exact
def meld_i(labs: MeldLabs) -> Decimal:
    """Return the unrounded MELD(i) of OPTN Policy 9.1.D (floors, Cr cap, dialysis rule)."""
    bilirubin = clamp(non_negative(labs.bilirubin, name="bilirubin"))
    inr = clamp(non_negative(labs.inr, name="inr"))
    creatinine = clamp(_creatinine(labs, _CR_MAX_MELD))
    return (
        Decimal("0.957") * ln(creatinine)
        + Decimal("0.378") * ln(bilirubin)
        + Decimal("1.120") * ln(inr)
        + Decimal("0.643")
    )


def _uncapped_meld(labs: MeldLabs) -> int:
    return int(round_half_up(meld_i(labs), "0.1") * 10)


@exact
def meld(labs: MeldLabs) -> int:
    """Return the OPTN integer MELD: MELD(i) rounded half up to the tenth, × 10, capped at 40."""
    return min(_uncapped_meld(labs), MELD_CAP)


@exact
def meld_na_from_meld(meld_score: int, sodium: Numeric) -> int:
    """Apply the OPTN 2016 sodium adjustment to an integer MELD (unchanged when ≤ 11)."""
    score = Decimal(meld_score)
    na = clamp(non_negative(sodium, name="sodium"), _NA_LOW, _NA_HIGH)
    if score <= MELD_NA_THRESHOLD:
        return min(meld_score, MELD_CAP)
    adjusted = score + Decimal("1.32") * (137 - na) - Decimal("0.033") * score * (137 - na)
    return min(int(round_half_up(adjusted)), MELD_CAP)


@exact
def meld_na(labs: MeldLabs) -> int:
    """Return MELD-Na (OPTN 2016) from the uncapped integer MELD; needs `labs.sodium`."""
    return meld_na_from_meld(_uncapped_meld(labs), _needed(labs.sodium, "sodium"))


@exact
def meld_3(labs: MeldLabs, *, female: bool) -> Meld3Score:
    """Return MELD 3.0 (Kim 2021); needs `labs.sodium` and `labs.albumin`."""
    ln_bili = ln(clamp(non_negative(labs.bilirubin, name="bilirubin")))
    ln_inr = ln(clamp(non_negative(labs.inr, name="inr")))
    ln_cr = ln(clamp(_creatinine(labs, _CR_MAX_MELD_3)))
    na = clamp(_needed(labs.sodium, "sodium"), _NA_LOW, _NA_HIGH)
    alb = clamp(_needed(labs.albumin, "albumin"), _ALB_LOW, _ALB_HIGH)
    d_na, d_alb = 137 - na, Decimal("3.5") - alb
    score = (
        (Decimal("1.33") if female else 0)
        + Decimal("4.56") * ln_bili
        + Decimal("0.82") * d_na
        - Decimal("0.24") * d_na * ln_bili
        + Decimal("9.09") * ln_inr
        + Decimal("11.14") * ln_cr
        + Decimal("1.85") * d_alb
        - Decimal("1.83") * d_alb * ln_cr
        + 6
    )
    uncapped = int(round_half_up(score))
    return Meld3Score(uncapped=uncapped, capped=min(uncapped, MELD_CAP))


__all__ = [
    "BILIRUBIN_UMOL_PER_MG_DL",
    "CREATININE_UMOL_PER_MG_DL",
    "MELD_CAP",
    "Meld3Score",
    "MeldLabs",
    "albumin_g_dl",
    "bilirubin_mg_dl",
    "creatinine_mg_dl",
    "meld",
    "meld_3",
    "meld_i",
    "meld_na",
    "meld_na_from_meld",
]
