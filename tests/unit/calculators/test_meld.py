"""MELD, MELD-Na and MELD 3.0: RULES.md §5.2 vectors, OPTN bounds, and score properties."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinical.calculators import (
    MELD_CAP,
    InvalidInputError,
    MeldLabs,
    MissingInputError,
    albumin_g_dl,
    bilirubin_mg_dl,
    creatinine_mg_dl,
    meld,
    meld_3,
    meld_i,
    meld_na,
    meld_na_from_meld,
)

# id, bilirubin mg/dL, INR, creatinine mg/dL, published MELD (RULES.md §5.2)
MELD_VECTORS = [
    ("M1", "0.6", "0.9", "0.7", 6),
    ("M2", "5.0", "1.6", "1.0", 18),
    ("M3", "10", "2.0", "1.5", 27),
    ("M7", "20", "0.95", "0.6", 18),
    ("M8", "15", "2.2", "0.8", 25),
    ("M12", "2.0", "1.2", "1.0", 11),
    ("M13", "2.0", "1.3", "1.0", 12),
]
# id, bilirubin µmol/L, INR, creatinine µmol/L, published MELD (same vectors, SI inputs)
MELD_SI_VECTORS = [
    ("M1", 10.26, 0.9, 61.88, 6),
    ("M2", 85.5, 1.6, 88.4, 18),
    ("M3", 171, 2.0, 132.6, 27),
    ("M7", 342, 0.95, 53.04, 18),
    ("M8", 256.5, 2.2, 70.72, 25),
    ("M12", 34.2, 1.2, 88.4, 11),
    ("M13", 34.2, 1.3, 88.4, 12),
]
M2 = MeldLabs(bilirubin=5.0, inr=1.6, creatinine=1.0)


@pytest.mark.parametrize(
    ("bilirubin", "inr", "creatinine", "expected"),
    [vector[1:] for vector in MELD_VECTORS],
    ids=[vector[0] for vector in MELD_VECTORS],
)
def test_meld_matches_published_vector(
    bilirubin: str, inr: str, creatinine: str, expected: int
) -> None:
    """RULES.md §5.2: the OPTN integer MELD of each published vector."""
    labs = MeldLabs(bilirubin=Decimal(bilirubin), inr=Decimal(inr), creatinine=Decimal(creatinine))

    assert meld(labs) == expected


@pytest.mark.parametrize(
    ("bilirubin", "inr", "creatinine", "expected"),
    [vector[1:] for vector in MELD_SI_VECTORS],
    ids=[vector[0] for vector in MELD_SI_VECTORS],
)
def test_meld_from_si_inputs_matches_published_vector(
    bilirubin: float, inr: float, creatinine: float, expected: int
) -> None:
    """RULES.md §5.2: SI inputs converted with 17.1 / 88.4 give identical results."""
    labs = MeldLabs(
        bilirubin=bilirubin_mg_dl(bilirubin), inr=inr, creatinine=creatinine_mg_dl(creatinine)
    )

    assert meld(labs) == expected


@pytest.mark.parametrize(
    ("vector", "labs", "expected"),
    [
        ("N1", MeldLabs(bilirubin=5.0, inr=1.6, creatinine=1.0, sodium=130), 23),
        ("N3", MeldLabs(bilirubin=2.0, inr=1.2, creatinine=1.0, sodium=125), 11),
        ("N5", MeldLabs(bilirubin=10, inr=2.0, creatinine=1.5, sodium=140), 27),
    ],
)
def test_meld_na_matches_published_vector(vector: str, labs: MeldLabs, expected: int) -> None:
    """RULES.md §5.2 N1/N3/N5: MELD-Na (OPTN 2016) from the labs of M2, M12 and M3."""
    assert meld_na(labs) == expected, vector


@pytest.mark.parametrize(
    ("vector", "labs", "female", "expected"),
    [
        (
            "T1",
            MeldLabs(bilirubin=5.0, inr=1.6, creatinine=1.0, sodium=137, albumin=3.5),
            False,
            18,
        ),
        ("T5", MeldLabs(bilirubin=0.7, inr=0.9, creatinine=0.6, sodium=141, albumin=4.2), True, 7),
    ],
)
def test_meld_3_matches_published_vector(
    vector: str, labs: MeldLabs, female: bool, expected: int
) -> None:
    """RULES.md §5.2 T1/T5: MELD 3.0 (Kim 2021) after its bounds."""
    score = meld_3(labs, female=female)

    assert (score.uncapped, score.capped) == (expected, expected), vector


def test_meld_i_is_the_unrounded_optn_sum() -> None:
    """RULES.md §5.2 M2: MELD(i) = 1.777772 before rounding to the tenth."""
    assert round(meld_i(M2), 6) == Decimal("1.777772")


@pytest.mark.parametrize(
    ("convert", "si", "conventional"),
    [
        (bilirubin_mg_dl, 85.5, Decimal(5)),
        (bilirubin_mg_dl, 136.8, Decimal(8)),
        (creatinine_mg_dl, 459.68, Decimal("5.2")),
        (creatinine_mg_dl, 132.6, Decimal("1.5")),
        (albumin_g_dl, 30, Decimal(3)),
    ],
)
def test_si_conversion_is_exact(
    convert: Callable[[float], Decimal], si: float, conventional: Decimal
) -> None:
    """RULES.md §0.4: ÷ 17.1, ÷ 88.4, ÷ 10 with no float noise (85.5 µmol/L is 5 mg/dL)."""
    assert convert(si) == conventional


def test_meld_ignores_the_callers_decimal_context() -> None:
    """Vectors hold whatever decimal precision the caller has set (purity of the core)."""
    with localcontext() as context:
        context.prec = 3

        assert meld(MeldLabs(bilirubin=15, inr=2.2, creatinine=0.8)) == 25


class TestOptnBounds:
    """RULES.md §5.1: floors at 1.0, Cr cap 4.0, dialysis rule, cap 40."""

    def test_values_below_one_count_as_one(self) -> None:
        """Any lab value < 1.0 is set to 1.0 (minimum MELD 6)."""
        assert meld(MeldLabs(bilirubin=0, inr=0.5, creatinine=0.99)) == 6
        assert meld(MeldLabs(bilirubin=1.0, inr=1.0, creatinine=1.0)) == 6

    def test_creatinine_above_four_counts_as_four(self) -> None:
        """Cr > 4.0 mg/dL is set to 4.0."""
        at_cap = MeldLabs(bilirubin=8, inr=1.8, creatinine=4.0)

        assert meld(MeldLabs(bilirubin=8, inr=1.8, creatinine=5.2)) == meld(at_cap) == 34

    def test_dialysis_sets_creatinine_to_four(self) -> None:
        """≥ 2 dialysis treatments or 24 h CVVHD in the prior week ⇒ Cr 4.0."""
        on_dialysis = MeldLabs(bilirubin=8, inr=1.8, creatinine=1.0, dialysis=True)

        assert meld(on_dialysis) == meld(MeldLabs(bilirubin=8, inr=1.8, creatinine=4.0))

    def test_score_is_capped_at_forty(self) -> None:
        """Maximum MELD 40."""
        assert meld(MeldLabs(bilirubin=60, inr=9, creatinine=4)) == MELD_CAP

    def test_negative_value_is_refused(self) -> None:
        """A negative concentration is a caller bug, not a finding."""
        with pytest.raises(InvalidInputError, match="bilirubin"):
            meld(MeldLabs(bilirubin=-1, inr=1, creatinine=1))

    def test_non_finite_value_is_refused(self) -> None:
        """NaN cannot be floored to 1.0 silently."""
        with pytest.raises(InvalidInputError, match="inr"):
            meld(MeldLabs(bilirubin=1, inr=float("nan"), creatinine=1))


class TestMeldNaBounds:
    """OPTN 2016 MELD-Na: only when MELD > 11, Na bounded to [125, 137]."""

    def test_meld_of_eleven_is_not_adjusted(self) -> None:
        """MELD 11 is not > 11 (vector N3), even at the lowest sodium."""
        assert meld_na_from_meld(11, 110) == 11

    def test_meld_of_twelve_is_adjusted(self) -> None:
        """MELD 12, Na 125: 12 + 1.32·12 − 0.033·12·12 = 23.088 → 23."""
        assert meld_na_from_meld(12, 125) == 23

    @pytest.mark.parametrize(("sodium", "bounded"), [(110, 125), (124.9, 125), (138, 137)])
    def test_sodium_is_bounded(self, sodium: float, bounded: int) -> None:
        """Na below 125 counts as 125, above 137 as 137."""
        assert meld_na_from_meld(20, sodium) == meld_na_from_meld(20, bounded)

    def test_result_is_capped_at_forty(self) -> None:
        """MELD 39, Na 125: 39 + 15.84 − 15.444 = 39.396 → 39; MELD 45 → 40."""
        assert meld_na_from_meld(39, 125) == 39
        assert meld_na_from_meld(45, 125) == MELD_CAP

    def test_sodium_is_required(self) -> None:
        """MELD-Na without a sodium is not computed."""
        with pytest.raises(MissingInputError, match="sodium"):
            meld_na(M2)


class TestMeld3Bounds:
    """Kim 2021 MELD 3.0 bounds (RULES.md §5.1) and the [UNCONF] cap at 40."""

    def test_creatinine_above_three_counts_as_three(self) -> None:
        """Cr ≤ 3.0 in MELD 3.0 (not 4.0)."""
        labs = MeldLabs(bilirubin=5, inr=1.6, creatinine=3.0, sodium=130, albumin=2.5)
        higher = MeldLabs(bilirubin=5, inr=1.6, creatinine=3.5, sodium=130, albumin=2.5)

        assert meld_3(higher, female=False) == meld_3(labs, female=False)

    def test_dialysis_sets_creatinine_to_three(self) -> None:
        """Dialysis ⇒ Cr 3.0."""
        labs = MeldLabs(bilirubin=5, inr=1.6, creatinine=3.0, sodium=130, albumin=2.5)
        dialysed = MeldLabs(
            bilirubin=5, inr=1.6, creatinine=1.0, sodium=130, albumin=2.5, dialysis=True
        )

        assert meld_3(dialysed, female=True) == meld_3(labs, female=True)

    @pytest.mark.parametrize(("albumin", "bounded"), [(1.0, 1.5), (4.0, 3.5)])
    def test_albumin_is_bounded(self, albumin: float, bounded: float) -> None:
        """Albumin is bounded to [1.5, 3.5] g/dL."""
        labs = MeldLabs(bilirubin=5, inr=1.6, creatinine=1.2, sodium=130, albumin=albumin)
        expected = MeldLabs(bilirubin=5, inr=1.6, creatinine=1.2, sodium=130, albumin=bounded)

        assert meld_3(labs, female=False) == meld_3(expected, female=False)

    def test_uncapped_value_is_kept_beside_the_capped_one(self) -> None:
        """The cap at 40 is [UNCONF]: both values are returned."""
        labs = MeldLabs(bilirubin=40, inr=6, creatinine=3, sodium=125, albumin=1.5)

        score = meld_3(labs, female=True)

        assert score.uncapped > MELD_CAP
        assert score.capped == MELD_CAP

    def test_albumin_is_required(self) -> None:
        """MELD 3.0 without albumin is not computed."""
        with pytest.raises(MissingInputError, match="albumin"):
            meld_3(MeldLabs(bilirubin=5, inr=1.6, creatinine=1, sodium=130), female=False)


labs_values = st.decimals(min_value=0, max_value=80, places=2)
sodium_values = st.decimals(min_value=100, max_value=160, places=1)


@pytest.mark.slow
@given(bilirubin=labs_values, inr=labs_values, creatinine=labs_values, dialysis=st.booleans())
def test_meld_is_between_six_and_forty(
    bilirubin: Decimal, inr: Decimal, creatinine: Decimal, dialysis: bool
) -> None:
    """MELD lies in [6, 40] for any measurable inputs (floors and cap)."""
    labs = MeldLabs(bilirubin=bilirubin, inr=inr, creatinine=creatinine, dialysis=dialysis)

    assert 6 <= meld(labs) <= MELD_CAP


@pytest.mark.slow
@given(
    values=st.tuples(labs_values, labs_values, labs_values),
    field=st.sampled_from(["bilirubin", "inr", "creatinine"]),
    increase=st.decimals(min_value=0, max_value=20, places=2),
)
def test_meld_never_falls_when_a_lab_value_rises(
    values: tuple[Decimal, Decimal, Decimal], field: str, increase: Decimal
) -> None:
    """Worse bilirubin, INR or creatinine never lowers MELD (monotone in each input)."""
    labs = MeldLabs(*values)
    worse = replace(labs, **{field: getattr(labs, field) + increase})

    assert meld(worse) >= meld(labs)


@pytest.mark.slow
@given(bilirubin=labs_values, inr=labs_values, creatinine=labs_values)
def test_dialysis_never_lowers_meld(bilirubin: Decimal, inr: Decimal, creatinine: Decimal) -> None:
    """The dialysis rule only ever raises creatinine to 4.0."""
    plain = MeldLabs(bilirubin=bilirubin, inr=inr, creatinine=creatinine)
    dialysed = MeldLabs(bilirubin=bilirubin, inr=inr, creatinine=creatinine, dialysis=True)

    assert meld(dialysed) >= meld(plain)


@pytest.mark.slow
@given(bilirubin=labs_values, inr=labs_values, creatinine=labs_values, sodium=sodium_values)
def test_meld_na_lies_between_meld_and_forty(
    bilirubin: Decimal, inr: Decimal, creatinine: Decimal, sodium: Decimal
) -> None:
    """Low sodium can only add to MELD, never past the cap."""
    labs = MeldLabs(bilirubin=bilirubin, inr=inr, creatinine=creatinine, sodium=sodium)

    assert meld(labs) <= meld_na(labs) <= MELD_CAP


@pytest.mark.slow
@given(
    bilirubin=labs_values,
    inr=labs_values,
    creatinine=labs_values,
    sodium=sodium_values,
    albumin=st.decimals(min_value=0, max_value=6, places=1),
    female=st.booleans(),
)
def test_meld_3_display_value_is_the_capped_score(
    bilirubin: Decimal,
    inr: Decimal,
    creatinine: Decimal,
    sodium: Decimal,
    albumin: Decimal,
    female: bool,
) -> None:
    """MELD 3.0 is at least 6 and its display value is min(uncapped, 40)."""
    labs = MeldLabs(
        bilirubin=bilirubin, inr=inr, creatinine=creatinine, sodium=sodium, albumin=albumin
    )

    score = meld_3(labs, female=female)

    assert score.uncapped >= 6
    assert score.capped == min(score.uncapped, MELD_CAP)
