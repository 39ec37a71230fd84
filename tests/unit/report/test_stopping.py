"""STOP-01 and STOP-02 numbers follow RULES.md §8.2's formulation (hand-computed vectors)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.report.core import stopping
from tests.unit.report.stats_reference import beta_tail, boundary

RULES_PRIOR = {"prior_alpha": 0.3, "prior_beta": 1.7, "rate": 0.15}


class TestStop01Posterior:
    def test_uniform_prior_vectors_worked_by_hand(self) -> None:
        """Beta(1,1) prior: Pr(θ > 0.15) is 0.85 a priori, 1 − 0.15² after 1/1, 0.85² after 0/1."""
        uniform = {"prior_alpha": 1.0, "prior_beta": 1.0, "rate": 0.15}

        assert stopping.posterior_exceeds(0, 0, **uniform) == pytest.approx(0.85)
        assert stopping.posterior_exceeds(1, 1, **uniform) == pytest.approx(1 - 0.15**2)
        assert stopping.posterior_exceeds(0, 1, **uniform) == pytest.approx(0.85**2)

    @pytest.mark.parametrize(("x", "n"), [(0, 0), (0, 10), (1, 2), (3, 5), (4, 10), (6, 30)])
    def test_posterior_matches_an_independent_integral(self, x: int, n: int) -> None:
        """Pr(θ > 0.15 | x, n) = tail of Beta(0.3 + x, 1.7 + n − x) (Simpson's rule reference)."""
        found = stopping.posterior_exceeds(x, n, **RULES_PRIOR)

        assert found == pytest.approx(beta_tail(0.15, 0.3 + x, 1.7 + n - x), abs=1e-5)

    @pytest.mark.slow
    def test_boundaries_for_thirty_patients_match_the_reference(self) -> None:
        """The stop boundary (fewest events with posterior ≥ 0.90) for every n up to 30."""
        found = [stopping.stop01_boundary(n, probability=0.9, **RULES_PRIOR) for n in range(31)]

        assert found == [boundary(n) for n in range(31)]
        assert found[10] == 4  # 4 of 10 stops the arm (also the demo report's boundary)
        assert found[1] is None  # one patient cannot reach 0.90

    def test_counts_outside_zero_to_n_are_refused(self) -> None:
        with pytest.raises(ValueError, match="events must lie"):
            stopping.posterior_exceeds(3, 2, **RULES_PRIOR)


class TestStop02:
    @pytest.mark.parametrize(
        ("arm", "control", "expected"),
        [
            ((0, 0), (0, 0), 1 / 2),  # identical Beta(1,1)
            ((1, 1), (0, 1), 5 / 6),  # Beta(2,1) vs Beta(1,2)
            ((0, 1), (1, 1), 1 / 6),  # Beta(1,2) vs Beta(2,1)
            ((1, 1), (0, 0), 2 / 3),  # ∫ 2x · x dx
            ((0, 1), (1, 2), 3 / 10),  # ∫ 2(1−x)(3x² − 2x³) dx
            ((0, 2), (1, 2), 1 / 5),  # ∫ 3(1−x)²(3x² − 2x³) dx
            ((2, 5), (2, 5), 1 / 2),  # identical posteriors
        ],
    )
    def test_probability_arm_worse_than_control_worked_by_hand(
        self, arm: tuple[int, int], control: tuple[int, int], expected: float
    ) -> None:
        """Pr(p_arm > p_control) under Beta(1,1) priors."""
        assert stopping.probability_greater(arm, control) == pytest.approx(expected, abs=1e-12)

    @settings(max_examples=60, deadline=None)
    @given(
        st.integers(0, 30).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
        st.integers(0, 30).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    )
    def test_the_two_orders_add_up_to_one(
        self, arm: tuple[int, int], control: tuple[int, int]
    ) -> None:
        """Pr(A > B) + Pr(B > A) = 1 for continuous posteriors."""
        total = stopping.probability_greater(arm, control) + stopping.probability_greater(
            control, arm
        )

        assert total == pytest.approx(1.0, abs=1e-9)

    def test_flags_only_when_probability_and_difference_both_pass(self) -> None:
        """Pr ≥ 0.95 and an observed difference ≥ 15 points, both required."""
        many = stopping.compare_mortality((10, 30), (1, 30), probability=0.95, min_difference=0.15)
        close = stopping.compare_mortality((10, 30), (1, 30), probability=0.95, min_difference=0.4)
        unsure = stopping.compare_mortality((1, 2), (0, 2), probability=0.95, min_difference=0.15)

        assert many.probability > 0.95
        assert many.difference == pytest.approx(0.3)
        assert many.triggered
        assert not close.triggered
        assert unsure.difference == pytest.approx(0.5)
        assert unsure.probability < 0.95
        assert not unsure.triggered

    def test_exactly_fifteen_points_counts(self) -> None:
        """A difference of exactly 15 points meets "≥ 15 points" despite binary rounding."""
        found = stopping.compare_mortality((9, 20), (6, 40), probability=0.0, min_difference=0.15)

        assert found.triggered
