"""Independent numeric references for the stopping-rule tests (test support; no scipy).

The Beta tail is integrated with composite Simpson's rule from the density written out with
`math.lgamma`, so the tests compare the report's scipy-based numbers with a computation that
shares none of its code.
"""

from __future__ import annotations

import math


def beta_tail(threshold: float, a: float, b: float, steps: int = 4_000) -> float:
    """Pr(θ > threshold) for θ ~ Beta(a, b), for b ≥ 1 (the density is finite on the range)."""
    log_norm = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)

    def density(x: float) -> float:
        if x >= 1.0:
            return 0.0 if b > 1 else math.exp(-log_norm) * x ** (a - 1)
        return math.exp((a - 1) * math.log(x) + (b - 1) * math.log1p(-x) - log_norm)

    h = (1.0 - threshold) / steps
    total = density(threshold) + density(1.0)
    for i in range(1, steps):
        total += (4 if i % 2 else 2) * density(threshold + i * h)
    return total * h / 3


def boundary(
    n: int, *, a: float = 0.3, b: float = 1.7, rate: float = 0.15, p: float = 0.9
) -> int | None:
    """Fewest events of n with Pr(θ > rate) ≥ p, by the Simpson tail."""
    return next((x for x in range(n + 1) if beta_tail(rate, a + x, b + n - x) >= p), None)
