"""Stopping-rule statistics of RULES.md §8.2 (core layer; pure functions).

STOP-01 (Thall & Simon family, Bayesian beta-binomial monitoring): θ ~ Beta(a, b) a priori,
x events among n evaluable patients give Beta(a + x, b + n − x) a posteriori, and the arm is
stopped when Pr(θ > rate | x, n) ≥ the probability boundary. The tail is the regularised
incomplete beta function (`scipy.stats.beta.sf`).

STOP-02: independent Beta(1, 1) priors on the mortality of an arm and of the control arm;
Pr(p_arm > p_control) is computed exactly as the finite sum for integer Beta parameters
(Evan Miller, "Formulas for Bayesian A/B testing"): with p_arm ~ Beta(α1, β1) and
p_control ~ Beta(α2, β2), Pr(p_arm > p_control) =
Σ_{i=0}^{α1−1} B(α2 + i, β1 + β2) / ((β1 + i) · B(1 + i, β1) · B(α2, β2)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import beta as beta_distribution


def posterior_exceeds(
    events: int, n: int, *, prior_alpha: float, prior_beta: float, rate: float
) -> float:
    """Pr(θ > rate | x = events of n) under a Beta(prior_alpha, prior_beta) prior."""
    _check_counts(events, n)
    tail = beta_distribution.sf(rate, prior_alpha + events, prior_beta + n - events)
    return float(tail)


def stop01_boundary(
    n: int, *, prior_alpha: float, prior_beta: float, rate: float, probability: float
) -> int | None:
    """Fewest events among n that trigger STOP-01, or None when no count up to n does."""
    for events in range(n + 1):
        found = posterior_exceeds(
            events, n, prior_alpha=prior_alpha, prior_beta=prior_beta, rate=rate
        )
        if found >= probability:
            return events
    return None


def probability_greater(arm: tuple[int, int], control: tuple[int, int]) -> float:
    """Pr(p_arm > p_control) for (deaths, n) of each under independent Beta(1, 1) priors."""
    _check_counts(*arm)
    _check_counts(*control)
    alpha1, beta1 = 1 + arm[0], 1 + arm[1] - arm[0]
    alpha2, beta2 = 1 + control[0], 1 + control[1] - control[0]
    total = math.fsum(
        math.exp(
            _log_beta(alpha2 + i, beta1 + beta2)
            - math.log(beta1 + i)
            - _log_beta(1 + i, beta1)
            - _log_beta(alpha2, beta2)
        )
        for i in range(alpha1)
    )
    # Rounding in the sum can push a certainty a hair past 1.
    return min(1.0, max(0.0, total))


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _check_counts(events: int, n: int) -> None:
    if not 0 <= events <= n:
        raise ValueError(f"events must lie in [0, n]; got {events} of {n}")


@dataclass(frozen=True, slots=True)
class MortalityComparison:
    """STOP-02 for one arm and one window against the control arm."""

    probability: float
    difference: float | None
    triggered: bool


def compare_mortality(
    arm: tuple[int, int],
    control: tuple[int, int],
    *,
    probability: float,
    min_difference: float,
) -> MortalityComparison:
    """Flag when Pr(p_arm > p_control) ≥ probability and the observed difference ≥ min."""
    found = probability_greater(arm, control)
    if arm[1] == 0 or control[1] == 0:
        return MortalityComparison(found, None, triggered=False)
    difference = arm[0] / arm[1] - control[0] / control[1]
    # A tiny tolerance so that 15 points written as 0.15 is not lost to binary rounding.
    triggered = found >= probability and difference >= min_difference - 1e-12
    return MortalityComparison(found, difference, triggered)
